"""The GRPO training dataset: one conversational prompt per problem plus the columns reward functions read."""

from __future__ import annotations

from collections.abc import Sequence

from tl_eval.harness.errors import DataError
from tl_eval.harness.task import Task
from tl_eval.harness.types import Problem


def select_problems(problems: Sequence[Problem], offset: int, limit: int | None) -> list[Problem]:
    """The contiguous slice [offset, offset+limit) of a task's problems, in their stable order."""
    chosen = list(problems[offset: None if limit is None else offset + limit])
    if not chosen:
        raise DataError(f"no training problems in [{offset}, {offset + (limit or 0)}) of {len(problems)}",
                        "lower offset or raise limit")
    return chosen


def build_dataset(task: Task, problems: Sequence[Problem]):
    """A `datasets.Dataset` with `prompt` (chat messages) and the columns `problem_id`, `task_type`, `answer`."""
    from datasets import Dataset

    rows = {
        "prompt": [task.planner_messages(p) for p in problems],
        "problem_id": [p.problem_id for p in problems],
        "task_type": [p.task_type for p in problems],
        "answer": [p.answer or "" for p in problems],
    }
    return Dataset.from_dict(rows)
