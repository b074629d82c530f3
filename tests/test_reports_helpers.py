"""Runs for the report and leaderboard tests, produced by the real pipeline with scripted models (no tests here)."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.models import register_scripted
from tl_eval.reports import fmt
from tl_eval.reports.systems import resolve

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CONDITIONS = ["full", "none", "truncated@0.5", "corrupted", "filler", "mismatched"]
TASKS = ["gsm8k", "math500"]


def _gold(data_dir: Path) -> dict[str, str]:
    gold = {}
    for line in (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()[:40]:
        row = json.loads(line)
        gold[row["question"].strip()] = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    for line in (data_dir / "math500" / "test.jsonl").read_text().splitlines()[:40]:
        row = json.loads(line)
        gold[row["problem"].strip()] = str(row["answer"])
    return gold


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10


def register_models(data_dir: Path) -> None:
    """Executors that solve a problem when its bucket (0-9) is below a threshold that depends on the trace."""
    gold = _gold(data_dir)

    def executor(skill_key: int, skill_other: int, skill_alone: int):
        def respond(messages):
            text = messages[-1]["content"]
            question = next(q for q in gold if q in text)
            if "Provided reasoning" not in text:
                ok = _bucket(question) < skill_alone
            else:
                ok = _bucket(question) < (skill_key if "key step" in text else skill_other)
            return f"The answer is \\boxed{{{gold[question] if ok else 'wrong'}}}."
        return respond

    register_scripted("rep-exec", executor(9, 4, 3))
    register_scripted("rep-exec-b", executor(7, 6, 5))
    register_scripted("rep-plan-good", lambda m: "<reasoning>Find the key step first: name the quantities, "
                                                 "then combine them one at a time and check the units.</reasoning>")
    register_scripted("rep-plan-weak", lambda m: "<reasoning>Read the problem. Think about it carefully and "
                                                 "work it out.</reasoning>")


def make_run(out: Path, planner: str, executor: str = "rep-exec", *, tasks=TASKS, limit: int = 12,
             conditions=CONDITIONS, **overrides) -> Path:
    cfg = RunConfig(tasks=list(tasks), planner=f"scripted:{planner}", executor=f"scripted:{executor}", limit=limit,
                    cache="off", data_dir=str(overrides.pop("data_dir")), output=str(out), conditions=list(conditions),
                    n_samples=overrides.pop("n_samples", 1), **overrides)
    run_dir, _ = run(prepare(cfg), show_progress=False, log=lambda _msg: None)
    return run_dir


@pytest.fixture(scope="session")
def scripted_runs(tmp_path_factory) -> dict[str, Path]:
    """good, weak (same executor), other (another executor), small (fewer problems, gsm8k only)."""
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"benchmark data not found in {DATA_DIR} (set TL_EVAL_DATA_DIR)")
    register_models(DATA_DIR)
    out = tmp_path_factory.mktemp("runs")
    return {
        "good": make_run(out, "rep-plan-good", data_dir=DATA_DIR, limit=20),
        "weak": make_run(out, "rep-plan-weak", data_dir=DATA_DIR, limit=20),
        "other": make_run(out, "rep-plan-good", "rep-exec-b", data_dir=DATA_DIR, limit=20),
        "small": make_run(out / "small", "rep-plan-weak", data_dir=DATA_DIR, tasks=["gsm8k"], limit=8,
                          conditions=["full", "none"]),
    }


class NumberCells(HTMLParser):
    """Collects every element that carries data-source: its attributes and the text of its `.v` span."""

    def __init__(self):
        super().__init__()
        self.cells: list[dict] = []
        self._open: dict | None = None
        self._in_v = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-source" in a:
            self._open = {**a, "text": ""}
            self.cells.append(self._open)
        elif tag == "span" and a.get("class") == "v" and self._open is not None:
            self._in_v = True

    def handle_endtag(self, tag):
        if tag == "span" and self._in_v:
            self._in_v = False
        elif tag == "td":
            self._open = None

    def handle_data(self, data):
        if self._in_v and self._open is not None:
            self._open["text"] += data


def number_cells(html: str) -> list[dict]:
    parser = NumberCells()
    parser.feed(html)
    return parser.cells


def check_cell_against_file(c: dict) -> float:
    """The cell's value equals the number at its source (divided by its divisor) and is written the standard way."""
    file, _, ptr = c["data-source"].partition("#")
    doc = json.loads(Path(file).read_text())
    expected = float(resolve(doc, ptr)) / int(c.get("data-divisor", 1))
    assert float(c["data-value"]) == pytest.approx(expected, rel=1e-12, abs=1e-15), c
    assert c["text"] == fmt.FORMATS[c["data-kind"]](expected), c
    return expected


def md_table_rows(markdown: str, header_start: str, after: str = "") -> list[list[str]]:
    """Cells of the first Markdown table whose header starts with `header_start`, below the line `after`."""
    lines = markdown.splitlines()
    first = lines.index(after) if after else 0
    start = next(i for i, line in enumerate(lines) if i > first and line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows
