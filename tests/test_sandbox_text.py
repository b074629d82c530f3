"""Any text is data (issue 29): programs that print lone surrogates, NUL bytes, invalid UTF-8 and megabytes, or
raise with such messages, go through the whole pipeline: every sample is written, a resume from the cached
verdicts finishes too, and the report and the leaderboard are built."""

from __future__ import annotations

import json
import re

import pytest

from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.models import register_scripted
from tl_eval.reports.leaderboard import build_leaderboard
from tl_eval.reports.report import build_report
from tests.conftest_sandbox import data_dir

# Bodies for the prompt's function, one per problem in turn; each is hostile text in a different place.
BODIES = [
    'import sys\n    sys.stderr.write("\\ud800 lone \\udfff surrogates")\n    raise ValueError("\\ud83d bad \\udc80")',
    'import sys\n    sys.stdout.write("nul\\x00nul\\x00")\n    sys.stdout.buffer.write(b"\\xff\\xfe\\xc3(")\n    return None',
    'import sys\n    sys.stdout.write("x" * 3_000_000)\n    return None',
    'class E(Exception):\n        pass\n    E.__name__ = "E\\ud800\\x00"\n    raise E("\\udcff")',
    'raise SystemExit("\\ud800")',
    'return "\\ud800\\x00\\udfff"',
]


_ASSIGNED: dict[str, str] = {}


def _executor(messages):
    text = messages[-1]["content"]
    match = re.search(r"def (\w+)\(([^)]*)\)", text)
    body = _ASSIGNED.setdefault(match.group(1), BODIES[len(_ASSIGNED) % len(BODIES)])  # each body, in turn
    return f"```python\ndef {match.group(1)}({match.group(2)}):\n    {body}\n```"


@pytest.fixture(scope="module")
def data():
    d = data_dir()
    if not (d / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"benchmark data not found in {d} (set TL_EVAL_DATA_DIR)")
    return d


def test_hostile_text_runs_resumes_and_reports(tmp_path, data, monkeypatch):
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "bwrap")
    register_scripted("text-hostile-exec", _executor)
    register_scripted("text-plan", lambda m: "<reasoning>Print what you like.</reasoning>")
    cache = tmp_path / "cache.sqlite"

    def once(run_id: str):
        cfg = RunConfig(tasks=["humaneval"], planner="scripted:text-plan", executor="scripted:text-hostile-exec",
                        limit=12, cache=str(cache), data_dir=str(data), output=str(tmp_path / "runs"),
                        conditions=["full", "none"], run_id=run_id)
        run_dir, _ = run(prepare(cfg), show_progress=False, log=lambda _msg: None)
        return run_dir

    first = once("first")
    rows = [json.loads(line) for line in (first / "samples_humaneval.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 24 and all(r["status"] for r in rows)
    assert not any(r["status"] == "sandbox_error" for r in rows), [r["verdict_details"] for r in rows]
    text = json.dumps(rows)
    assert "\\ufffd" in text and "\\u0000" in text  # surrogates replaced, NUL kept, and both written
    assert any("output limit" in r["verdict_details"].get("reason", "") for r in rows)
    again = once("again")  # every verdict now comes from the cache
    assert (again / "samples_humaneval.jsonl").read_text("utf-8").count("\n") == 24
    assert json.loads((again / "results.json").read_text())["results"]
    build_report([first, again], tmp_path / "report")
    assert any((tmp_path / "report").iterdir())
    build_leaderboard([tmp_path / "runs"], tmp_path / "site", n_resamples=50)
    assert (tmp_path / "site" / "index.html").exists()
