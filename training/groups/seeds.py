"""Seed problems with reference solutions, read straight from the local benchmark files."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.errors import ConfigError, DataError

MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
GSM8K_SPLITS = ("train", "test")


@dataclass(frozen=True)
class Seed:
    problem_id: str
    source: str
    task_type: str
    problem: str
    reference_solution: str  # GSM8K: the rationale as published; MBPP: the reference program
    answer: str  # GSM8K: the final number; MBPP: the reference program (what a leak would give away)
    entry_point: str | None = None


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """`--data-dir`, else $TL_EVAL_DATA_DIR, else `shared/data` beside the repository."""
    if data_dir:
        return Path(data_dir)
    if os.environ.get("TL_EVAL_DATA_DIR"):
        return Path(os.environ["TL_EVAL_DATA_DIR"])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"seed data {path} not found", "pass --data-dir DIR or set TL_EVAL_DATA_DIR to the folder "
                        "holding gsm8k/ and mbpp/")
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})",
                                    "restore the file from its source") from exc
    return out


def load_gsm8k(data_dir: Path, split: str) -> list[Seed]:
    if split not in GSM8K_SPLITS:
        raise ConfigError(f"unknown GSM8K split {split!r}", f"use one of {', '.join(GSM8K_SPLITS)}")
    path = data_dir / "gsm8k" / f"{split}.jsonl"
    seeds = []
    for i, row in enumerate(_jsonl(path)):
        m = re.search(r"####\s*(.+?)\s*$", row.get("answer", ""))
        if not m or "question" not in row:
            raise DataError(f"{path}:{i + 1}: no question or no '#### N' final line", "restore the file from its source")
        seeds.append(Seed(f"gsm8k/{split}/{i}", "gsm8k", "math", row["question"], row["answer"],
                          m.group(1).replace(",", "")))
    return seeds


def load_mbpp(data_dir: Path, split: str) -> list[Seed]:
    if split not in MBPP_SPLITS:
        raise ConfigError(f"unknown MBPP split {split!r}", f"use one of {', '.join(MBPP_SPLITS)}")
    lo, hi = MBPP_SPLITS[split]
    seeds = []
    for row in _jsonl(data_dir / "mbpp" / "mbpp.jsonl"):
        if not lo <= int(row["task_id"]) <= hi:
            continue
        code = row["code"].replace("\r\n", "\n").replace("\t", "    ")
        # The entry point: the first function the tests call that the reference defines ("int(lobb_num(..))").
        called = re.findall(r"([A-Za-z_]\w*)\s*\(", row["test_list"][0]) if row.get("test_list") else []
        entry = next((n for n in called if re.search(rf"^\s*def\s+{n}\s*\(", code, re.M)), None)
        tests = "\n".join(row.get("test_list") or [])
        problem = f"{row['text']}\nYour code should pass these tests:\n{tests}"
        seeds.append(Seed(f"mbpp/{row['task_id']}", "mbpp", "code", problem, code, code, entry))
    return seeds


def load_seeds(task: str, split: str, data_dir: str | Path | None) -> list[Seed]:
    root = resolve_data_dir(data_dir)
    if task == "gsm8k":
        return load_gsm8k(root, split)
    if task == "mbpp":
        return load_mbpp(root, split)
    raise ConfigError(f"build-groups has no seed task {task!r}", "use --task gsm8k or --task mbpp")
