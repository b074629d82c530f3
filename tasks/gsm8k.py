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

    def source(self, data_dir: Path | None) -> str:
        return f"hub:{self.hub[0]} ({self.hub[1]})" if data_dir is None else str(Path(data_dir) / "gsm8k/test.jsonl")

    def size(self, data_dir: Path | None) -> int | None:
        return 1319
