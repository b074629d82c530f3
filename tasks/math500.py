"""MATH-500: the 500-problem MATH test subset of "Let's Verify Step by Step"; gold = `answer`."""

from __future__ import annotations

import re
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem

from tl_eval.tasks.data import load_hub, read_jsonl, require_fields, require_file
from tl_eval.tasks.math_base import MathTask


# Where a sentence of a MATH solution starts: after a blank line, or after ". " / ".$ " / ".\\] " and similar.
_SENTENCE_START = re.compile(r"\n\s*\n|(?<=[.!?])\$?\s+(?=[A-Z\\$])|(?<=\.\$)\s*|(?<=\\\])\s*")


_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def reference_plan(solution: str, answer: str | None) -> str:
    """The solution as a plan without its answer: the sentence that holds the last `\\boxed{...}` is cut with
    everything after it (figures drawn after the answer go too), and so is the sentence before it when that
    one states the gold answer as well ("... so $x = 5$. Therefore the answer is $\\boxed{5}$."). Earlier
    sentences stay even when they hold the answer as an intermediate value: the leakage figure counts those
    and the masked condition removes them.
    """
    from tl_eval.harness.metrics.leakage import leaks_answer_math

    text = solution.strip()
    at = text.rfind("\\boxed")
    if at < 0:
        at = text.rfind("\\fbox")
    if at >= 0:
        starts = [m.end() for m in _SENTENCE_START.finditer(text, 0, at)]
        cut = text[:starts[-1] if starts else 0].rstrip()
        if not cut:  # a one-sentence solution: keep its computation up to the last `=` before the answer
            eq = text.rfind("=", 0, at)
            cut = text[:eq].rstrip() if eq > 0 else ""
            cut += "$" if cut.count("$") % 2 else ""
        text = cut
    text = _BOXED.sub(r"\1", text)  # an earlier boxed value is an intermediate one: unboxed, it stays
    if answer is not None and text:
        starts = [m.end() for m in _SENTENCE_START.finditer(text)]
        begin = starts[-1] if starts else 0
        if leaks_answer_math(text[begin:], answer):
            text = text[:begin].rstrip()
    return text


class Math500Task(MathTask):
    name = "math500"
    hub = ("HuggingFaceH4/MATH-500", None)
    rel = "math500/test.jsonl"

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        if split != "test":
            raise DataError(f"math500 has only a 'test' split, not {split!r}", "use split 'test'")
        if data_dir is None:
            rows, where = load_hub(*self.hub, split=split, rel=self.rel), self.hub[0]
        else:
            path = require_file(data_dir, self.rel)
            rows, where = read_jsonl(path), str(path)
        problems = []
        for i, row in enumerate(rows):
            require_fields(row, ("problem", "answer"), f"{where} row {i}")
            # Ids use the row index, which the hub copy and the local file share; unique_id is kept aside.
            problems.append(Problem(
                problem_id=f"{self.name}/{i}", task=self.name, task_type="math", prompt=row["problem"],
                answer=str(row["answer"]), reference=row.get("solution"),
                metadata={k: row[k] for k in ("subject", "level", "unique_id") if k in row},
            ))
        return problems

    def reference_plan(self, problem: Problem) -> str | None:
        return reference_plan(problem.reference, problem.answer) if problem.reference else None

    def source(self, data_dir: Path | None) -> str:
        return f"hub:{self.hub[0]}" if data_dir is None else str(Path(data_dir) / self.rel)

    def size(self, data_dir: Path | None) -> int | None:
        return 500
