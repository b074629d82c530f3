"""Seed problems of TraceLift-Groups: a benchmark task's own problems, through the task's own loader.

So the seeds have the evaluation's splits, problem ids, prompts (what the planner and the Reason RM see) and
gold answers, and a seed benchmark is any registered task whose problems carry a reference solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.config import default_data_dir
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.task import get_task

SEED_TASKS = ("gsm8k", "mbpp")  # seed tasks with a train split and a reference plan (Task.reference_plan)


@dataclass(frozen=True)
class Seed:
    problem_id: str
    source: str
    task_type: str
    problem: str
    reference_solution: str  # GSM8K: the rationale; MBPP: the reference program
    answer: str  # GSM8K: the final number; MBPP: the reference program (what a leak would give away)
    entry_point: str | None = None
    reference_plan: str = ""  # the task's reference plan (Task.reference_plan): the group's positive trace


def load_seeds(task: str, split: str, data_dir: str | Path | None) -> list[Seed]:
    """The task's problems of `split` as seeds; `data_dir` None reads $TL_EVAL_DATA_DIR, else the hub."""
    if task not in SEED_TASKS:
        raise ConfigError(f"build-groups has no seed task {task!r}", f"use --task {' or --task '.join(SEED_TASKS)}")
    adapter = get_task(task)
    problems = adapter.load(Path(data_dir) if data_dir else default_data_dir(), split)
    return [Seed(p.problem_id, task, p.task_type, p.prompt, p.reference or "",
                 p.answer if p.answer is not None else (p.reference or ""), p.entry_point,
                 adapter.reference_plan(p) or "") for p in problems]
