"""Scripted models for pipeline tests (importable by subprocesses too). Never used for reported numbers."""

import json
import os
import re
import time
from pathlib import Path

from tl_eval.harness.models import register_scripted

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


def _question(messages) -> str:
    """The last user message (a tagged planner's request ends with the assistant prefill)."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def oracle_planner(messages):
    gold = _gold_for(_question(messages))
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


def _count_call(role: str) -> None:
    """One line per model call in $TL_TEST_CALLS (appends are atomic: processes can share the file)."""
    path = os.environ.get("TL_TEST_CALLS")
    if path:
        with open(path, "a") as f:
            f.write(f"{role} {os.getpid()}\n")
    time.sleep(float(os.environ.get("TL_TEST_DELAY", "0")))


def counting_planner(messages):
    _count_call("planner")
    return oracle_planner(messages)


def coder_executor(messages):
    """Math: the follower. Code: the prompt's function returning None, a real program the sandbox runs."""
    text = messages[-1]["content"]
    match = re.search(r"def (\w+)\(([^)]*)\)", text)
    if match is None:
        return follower_executor(messages)
    return f"```python\ndef {match.group(1)}({match.group(2)}):\n    return None\n```"


def counting_executor(messages):
    _count_call("executor")
    return coder_executor(messages)


for _name, _fn in {"oracle-planner": oracle_planner, "follower": follower_executor, "vague-planner": vague_planner,
                   "slow-planner": slow_planner, "slow-follower": slow_executor, "coder": coder_executor,
                   "counting-planner": counting_planner, "counting-executor": counting_executor}.items():
    register_scripted(_name, _fn)


def method_planner(messages):
    """A useful method that never states the answer: 'compute 2G/2' (a computation, not the value G)."""
    gold = _gold_for(_question(messages))
    return f"<reasoning>\nFind the total, doubled and then halved: compute {2 * int(gold)}/2.\n</reasoning>"


def calculator_executor(messages):
    """Evaluates the last `a/b` the reasoning asks for; without reasoning (or with none to compute), answers 0."""
    text = messages[-1]["content"]
    found = re.findall(r"compute (-?\d+)/(\d+)", text)
    return f"\\boxed{{{int(found[-1][0]) // int(found[-1][1]) if found else 0}}}"


def recording_planner(messages):
    """Writes down what reached it (the messages), as a trace: tests read it back from the samples."""
    return "<reasoning>\n" + json.dumps(messages).replace("<", "\\u003c") + "\n</reasoning>"  # (tags in prompts)


for _name, _fn in {"method-planner": method_planner, "calculator": calculator_executor,
                   "recording-planner": recording_planner}.items():
    register_scripted(_name, _fn)
