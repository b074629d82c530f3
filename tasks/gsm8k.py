"""GSM8K (test 1319, train 7473): grade-school word problems; the gold is the number after `####`."""

from __future__ import annotations

import re
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem

from tl_eval.tasks.data import load_hub, read_jsonl, require_fields, require_file
from tl_eval.tasks.math_base import MathTask

_CALC = re.compile(r"<<[^>]*>>")  # calculator annotations, e.g. <<16-3-4=9>>


def gold_answer(answer_field: str, where: str) -> str:
    """The number after `####`, without thousands separators."""
    if "####" not in answer_field:
        raise DataError(f"{where}: answer has no '#### N' line", "use the published GSM8K file")
    return answer_field.rsplit("####", 1)[1].strip().replace(",", "")


# `= 18`, `= $18`, `= 18%` at the end of a computation: where the rationale's last line states the result.
_RESULT = re.compile(r"\s*=\s*\$?\s*(-?[\d,]*\.?\d+)\s*%?")


def reference_plan(rationale: str, answer: str | None) -> str:
    """The rationale as a plan without the final answer.

    The `####` line and the `<<a*b=c>>` calculator annotations are gone already (Problem.reference). The last
    line is the step that computes the answer; it keeps its computation but not its result: its last
    `= N` is cut when N is the gold answer ("She makes 9 * 2 = $18 every day" -> "She makes 9 * 2 every day").
    A last line that still states the answer after that is dropped. Results of earlier lines stay: they are
    intermediate values the executor needs, even when one equals the answer by coincidence (the leakage
    figure then counts it, and the masked condition removes it).
    """
    from tl_eval.harness.metrics.leakage import leaks_answer_math

    lines = [ln for ln in _CALC.sub("", rationale.rsplit("####", 1)[0]).strip().splitlines() if ln.strip()]
    if not lines or answer is None:
        return "\n".join(lines)
    last = lines[-1]
    results = [m for m in _RESULT.finditer(last) if _same_number(m.group(1), answer)]
    if results:
        m = results[-1]
        rest = last[m.end():]
        last = (last[:m.start()] + (" " if rest[:1].isalnum() else "") + rest).rstrip()
    lines[-1] = last
    if leaks_answer_math(last, answer) or not last.strip():
        lines.pop()
    return "\n".join(lines)


def _same_number(text: str, answer: str) -> bool:
    try:
        return float(text.replace(",", "")) == float(answer.replace(",", ""))
    except ValueError:
        return False


class Gsm8kTask(MathTask):
    name = "gsm8k"
    hub = ("openai/gsm8k", "main")
    splits = ("test", "train")

    def _rel(self, split: str) -> str:
        if split not in self.splits:
            raise DataError(f"gsm8k has no split {split!r}", f"use one of: {', '.join(self.splits)}")
        return f"gsm8k/{split}.jsonl"

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        rel = self._rel(split)
        if data_dir is None:
            rows, where = load_hub(*self.hub, split=split, rel=rel), f"{self.hub[0]} {split}"
        else:
            path = require_file(data_dir, rel)
            rows, where = read_jsonl(path), str(path)
        prefix = self.name if split == "test" else f"{self.name}/{split}"
        problems = []
        for i, row in enumerate(rows):
            require_fields(row, ("question", "answer"), f"{where} row {i}")
            steps = row["answer"].rsplit("####", 1)[0]
            problems.append(Problem(
                problem_id=f"{prefix}/{i}", task=self.name, task_type="math", prompt=row["question"],
                answer=gold_answer(row["answer"], f"{where} row {i}"), reference=_CALC.sub("", steps).strip(),
                metadata={"split": split, "index": i},
            ))
        return problems

    def reference_plan(self, problem: Problem) -> str | None:
        return reference_plan(problem.reference, problem.answer) if problem.reference else None

    def source(self, data_dir: Path | None) -> str:
        return f"hub:{self.hub[0]} ({self.hub[1]})" if data_dir is None else str(Path(data_dir) / "gsm8k/test.jsonl")

    def size(self, data_dir: Path | None) -> int | None:
        return 1319
