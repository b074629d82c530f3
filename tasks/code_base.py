"""Shared machinery of code tasks: extraction, CodeJob building, and verification in the sandbox."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from tl_eval.harness.metrics.leakage import leaks_code
from tl_eval.harness.metrics.masking import mask_code
from tl_eval.harness.perturb import CODE_KINDS
from tl_eval.harness.task import Task
from tl_eval.harness.types import Message, Problem, Verdict
from tl_eval.harness.verify.code_job import CodeJob, CodeTest

from tl_eval.tasks import prompts
from tl_eval.tasks.code_extract import extract_program

NO_CODE = {"reason": "no code found"}


class CodeTask(Task):
    """A task whose artifact is a program judged by trusted tests in the sandbox."""

    task_type = "code"
    planner_stops = ("```",)  # a plan has no code block: the turn ends where one would start
    corruption_kinds = CODE_KINDS
    partial_credit = True
    uses_sandbox = True

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self._verifier = None
        self._limits: dict[str, float] = {}  # problem_id -> per-test time limit from the reference run

    # -- subclass hooks -------------------------------------------------------------------------------------
    def tests(self, problem: Problem) -> tuple[CodeTest, ...]:
        """Trusted tests of one problem."""
        raise NotImplementedError

    def context(self, problem: Problem) -> str:
        """Trusted source run before the candidate (imports, helpers, the reference program)."""
        return ""

    # -- Task interface -------------------------------------------------------------------------------------
    def planner_messages(self, problem: Problem) -> list[Message]:
        return prompts.planner_messages(problem)

    def executor_messages(self, problem: Problem, trace: str | None) -> list[Message]:
        return prompts.executor_messages(problem, trace)

    def reference_plan(self, problem: Problem) -> str | None:
        """The reference program's steps in words, no code quoted (tasks/code_plan.py states the rule)."""
        from tl_eval.tasks.code_plan import code_plan

        if not problem.reference:
            return None
        try:
            return code_plan(problem.reference, problem.entry_point)
        except SyntaxError:
            return None

    def extract(self, problem: Problem, output: str) -> str | None:
        signature = problem.prompt if problem.metadata.get("signature_prompt") else None
        return extract_program(output, problem.entry_point, signature)

    def build_job(self, problem: Problem, solution: str) -> CodeJob:
        """The sandbox job judging `solution` against the problem's tests."""
        entry = problem.entry_point or ""
        # The context may hold the reference, which defines the entry point too; unbind it so that a
        # candidate that never defines the function fails instead of being judged on the reference.
        guard = f"\nglobals().pop({entry!r}, None)\n" if entry else ""
        return CodeJob(solution=solution, entry_point=entry, tests=self.tests(problem),
                       context=self.context(problem) + guard, job_id=problem.problem_id)

    def verify(self, problems: Sequence[Problem], artifacts: Sequence[str | None],
               outputs: Sequence[str]) -> list[Verdict]:
        if not (len(problems) == len(artifacts) == len(outputs)):
            raise ValueError("verify needs one artifact and one output per problem")
        verdicts: list[Verdict | None] = [None] * len(problems)
        todo: list[int] = []
        for i, artifact in enumerate(artifacts):
            if artifact is None or not artifact.strip():
                verdicts[i] = Verdict("compile_error", details=dict(NO_CODE))
            else:
                todo.append(i)
        if todo:
            jobs = [self.build_job(problems[i], artifacts[i]) for i in todo]  # type: ignore[arg-type]
            jobs = self._with_time_limits([problems[i] for i in todo], jobs)
            for i, verdict in zip(todo, self.verifier().verify(jobs)):
                verdicts[i] = verdict
        return verdicts  # type: ignore[return-value]

    def trace_leaks(self, problem: Problem, trace: str) -> bool:
        return leaks_code(trace, problem.entry_point)

    def mask_trace(self, problem: Problem, trace: str) -> tuple[str, list[tuple[int, int]]] | None:
        return mask_code(trace, problem.entry_point) if self.trace_leaks(problem, trace) else None

    def solution_artifact(self, problem: Problem, text: str) -> str | None:
        return text  # a whole program is its own artifact

    def completion_solution(self, problem: Problem, completion: str) -> str:
        return problem.prompt + completion  # the completion continues the signature prompt

    def verifier_note(self) -> str | None:
        return f"sandbox tier: {self.verifier().tier}"

    def verdict_identity(self) -> dict:
        identity = super().verdict_identity()
        options = identity["options"]
        # Settings of other task types, or ones that change how the sandbox runs but not what it decides:
        # the number of workers, and the permission to run a tier that `sandbox_tier` names already.
        for key in ("math_pipeline", "grader_timeout_s", "allow_unsandboxed"):
            options.pop(key, None)
        if isinstance(options.get("sandbox_limits"), dict):
            options["sandbox_limits"].pop("workers", None)
        # Tested programs run on this interpreter: a new Python can change what they do.
        identity["versions"]["python"] = ".".join(map(str, sys.version_info[:2]))
        return identity

    def close(self) -> None:
        # A verifier passed in through `code_verifier` belongs to the caller, who closes it.
        if self._verifier is not None and self._verifier is not self.options.get("code_verifier"):
            self._verifier.close()
        self._verifier = None

    # -- helpers --------------------------------------------------------------------------------------------
    def verifier(self):
        """The sandbox verifier, started on first use (its probe and workers cost time)."""
        if self._verifier is None and self.options.get("code_verifier") is not None:
            self._verifier = self.options["code_verifier"]
        if self._verifier is None:
            from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits

            limits = self.options.get("sandbox_limits") or SandboxLimits()
            self._verifier = CodeVerifier(limits, tier=self.options.get("sandbox_tier", "auto"),
                                          allow_unsandboxed=bool(self.options.get("allow_unsandboxed", False)))
        return self._verifier

    def _with_time_limits(self, problems: Sequence[Problem], jobs: list[CodeJob]) -> list[CodeJob]:
        """Per-test limits scaled from each reference's runtime (measured once per problem)."""
        if not self.options.get("reference_time_limits", True):
            return jobs
        need = {p.problem_id: p for p in problems if p.reference and p.problem_id not in self._limits}
        if need:
            ref_jobs = [self.build_job(p, p.reference) for p in need.values()]  # type: ignore[arg-type]
            for pid, limit in zip(need, self.verifier().reference_time_limits(ref_jobs)):
                self._limits[pid] = limit
        return [dataclasses.replace(job, time_limit_s=self._limits[p.problem_id])
                if p.problem_id in self._limits and self._limits[p.problem_id] else job
                for p, job in zip(problems, jobs)]
