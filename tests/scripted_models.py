"""Scripted models for pipeline tests (importable by subprocesses too). Never used for reported numbers."""

import json
import os
import re
import time
from pathlib import Path

from harness.models import register_scripted

DATA = Path(os.environ.get("TL_EVAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
_GOLD: dict[str, str] = {}


def _gold_for(text: str) -> str | None:
    """Look the GSM8K gold answer up by question text (a planner that 'knows' the answer)."""
    if not _GOLD:
        for line in (DATA / "gsm8k" / "test.jsonl").open():
            row = json.loads(line)
            _GOLD[row["question"].strip()] = row["answer"].split("####")[-1].strip().replace(",", "")
    for question, gold in _GOLD.items():
        if question in text:
            return gold
    return None


def oracle_planner(messages):
    gold = _gold_for(messages[-1]["content"])
    return f"<reasoning>\nRead the problem.\nCompute the total.\nSo the result is {gold}.\n</reasoning>"


def follower_executor(messages):
    """Answers with the last number of the provided reasoning; without reasoning, answers 0."""
    text = messages[-1]["content"]
    if "Provided reasoning:" not in text:
        return "I cannot tell. \\boxed{0}"
    reasoning = text.split("Provided reasoning:", 1)[1].split("Use the provided reasoning", 1)[0]
    numbers = re.findall(r"-?\d+(?:\.\d+)?", reasoning)
    return f"The answer is \\boxed{{{numbers[-1] if numbers else 0}}}"


def vague_planner(messages):
    return "<reasoning>\nThink about the quantities.\nAdd them up carefully.\n</reasoning>"


def slow_planner(messages):
    time.sleep(float(os.environ.get("TL_TEST_DELAY", "0.3")))
    return oracle_planner(messages)


def slow_executor(messages):
    time.sleep(float(os.environ.get("TL_TEST_DELAY", "0.3")))
    return follower_executor(messages)


for _name, _fn in {"oracle-planner": oracle_planner, "follower": follower_executor, "vague-planner": vague_planner,
                   "slow-planner": slow_planner, "slow-follower": slow_executor}.items():
    register_scripted(_name, _fn)
