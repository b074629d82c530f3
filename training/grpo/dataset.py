"""The GRPO training dataset: one conversational prompt per problem plus the columns reward functions read."""

from __future__ import annotations

from collections.abc import Sequence

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem


def select_problems(problems: Sequence[Problem], offset: int, limit: int | None) -> list[Problem]:
    """The contiguous slice [offset, offset+limit) of a task's problems, in their stable order."""
    chosen = list(problems[offset: None if limit is None else offset + limit])
    if not chosen:
        raise DataError(f"no training problems in [{offset}, {offset + (limit or 0)}) of {len(problems)}",
                        "lower offset or raise limit")
    return chosen


def select_by_executor_alone(client, problems: Sequence[Problem], low: float, high: float, limit: int | None,
                             log=print, chunk: int = 16) -> tuple[list[Problem], dict[str, float]]:
    """The first `limit` problems whose executor-alone success rate (K samples, the TraceLift reward's own
    executor-alone samples, so they are cached for training) lies in [low, high], and every screened rate.

    Where the executor always fails or always succeeds alone, a trace rarely changes the outcome and GRPO's
    group rewards are all equal (no gradient); in between, a trace can lift it and rewards vary.
    """
    chosen, rates = [], {}
    for start in range(0, len(problems), chunk):
        part = problems[start:start + chunk]
        for pid, outs in client.alone(part).items():
            rates[pid] = sum(o.verdict.passed for o in outs) / len(outs)
        chosen = [p for p in problems[:start + chunk] if p.problem_id in rates and low <= rates[p.problem_id] <= high]
        log(f"screened {len(rates)}/{len(problems)} problems with the executor alone: {len(chosen)} in [{low}, {high}]")
        if limit is not None and len(chosen) >= limit:
            break
    chosen = chosen[:limit]
    if not chosen:
        raise DataError(f"no screened problem has an executor-alone success rate in [{low}, {high}]",
                        "widen select_alone or raise pool")
    return chosen, rates


def build_dataset(problems: Sequence[Problem], prompts: Sequence[str]):
    """A `datasets.Dataset` with `prompt` (the planner's turn as text, training.grpo.turn) and the columns
    `problem_id`, `task_type`, `answer`."""
    from datasets import Dataset

    rows = {
        "prompt": list(prompts),
        "problem_id": [p.problem_id for p in problems],
        "task_type": [p.task_type for p in problems],
        "answer": [p.answer or "" for p in problems],
    }
    return Dataset.from_dict(rows)
