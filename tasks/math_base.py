"""Shared machinery of math tasks: extraction and grading through the harness's math grader."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tl_eval.harness.metrics.leakage import leaks_answer_math
from tl_eval.harness.metrics.masking import mask_math
from tl_eval.harness.perturb import MATH_KINDS
from tl_eval.harness.task import Task
from tl_eval.harness.types import Message, Problem, Verdict

from tl_eval.tasks import prompts


@functools.cache
def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


class MathTask(Task):
    """A task whose artifact is a final answer compared with a gold answer."""

    task_type = "math"
    corruption_kinds = MATH_KINDS
    verdict_reads_output = True  # the grader reads the whole output (e.g. the last boxed answer)

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self._grader = None

    @property
    def pipeline(self) -> str:
        return self.options.get("math_pipeline", "strict")

    def planner_messages(self, problem: Problem) -> list[Message]:
        return prompts.planner_messages(problem)

    def executor_messages(self, problem: Problem, trace: str | None) -> list[Message]:
        return prompts.executor_messages(problem, trace)

    def extract(self, problem: Problem, output: str) -> str | None:
        from tl_eval.harness.verify.math_grader import extract_answer

        return extract_answer(output or "", self.pipeline)

    def verify(self, problems: Sequence[Problem], artifacts: Sequence[str | None],
               outputs: Sequence[str]) -> list[Verdict]:
        if not (len(problems) == len(artifacts) == len(outputs)):
            raise ValueError("verify needs one artifact and one output per problem")
        verdicts = self.grader().grade(list(outputs), [p.answer or "" for p in problems])
        for verdict, artifact in zip(verdicts, artifacts):
            if artifact is None and verdict.status != "no_answer":  # the caller found no answer: that stands
                verdict.status = "no_answer"
        return verdicts

    def trace_leaks(self, problem: Problem, trace: str) -> bool:
        return problem.answer is not None and leaks_answer_math(trace, problem.answer)

    def mask_trace(self, problem: Problem, trace: str) -> tuple[str, list[tuple[int, int]]] | None:
        return mask_math(trace, problem.answer) if self.trace_leaks(problem, trace) else None

    def gold_target(self, problem: Problem) -> str:
        return problem.answer or ""

    def reference_artifact(self, problem: Problem) -> str | None:
        """The reference solution's steps ending in the gold answer boxed, as a perfect executor would write."""
        steps = (problem.reference or "").strip()
        return f"{steps}\n\nThe final answer is $\\boxed{{{problem.answer}}}$.".lstrip()

    def verdict_identity(self) -> dict:
        identity = super().verdict_identity()
        for key in ("sandbox_limits", "sandbox_tier", "allow_unsandboxed"):  # the code tasks' settings
            identity["options"].pop(key, None)
        for package in ("math-verify", "sympy"):  # the symbolic comparison
            identity["versions"][package] = _version(package)
        return identity

    def grader(self):
        """The math grader, started on first use (its process pool costs time)."""
        if self._grader is None:
            from tl_eval.harness.verify.math_grader import MathGrader

            self._grader = MathGrader(self.pipeline, timeout_s=float(self.options.get("grader_timeout_s", 5.0)))
        return self._grader

    def close(self) -> None:
        if self._grader is not None:
            self._grader.close()
            self._grader = None
