"""MATH-500: the 500-problem MATH test subset of "Let's Verify Step by Step"; gold = `answer`."""

from __future__ import annotations

from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem

from tl_eval.tasks.data import load_hub, read_jsonl, require_fields, require_file
from tl_eval.tasks.math_base import MathTask


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

    def source(self, data_dir: Path | None) -> str:
        return f"hub:{self.hub[0]}" if data_dir is None else str(Path(data_dir) / self.rel)

    def size(self, data_dir: Path | None) -> int | None:
        return 500
