"""Trace rules of a task type for tests that only name the type: the task and a bare problem to apply them to."""

from __future__ import annotations

from tl_eval.harness.pipeline.interventions import Condition, Intervention, apply_condition
from tl_eval.harness.types import Problem
from tl_eval.tasks.registry import rules_task


def rules(task_type: str, problem_id: str = "p1", answer: str | None = None, entry_point: str | None = None):
    task = rules_task(task_type)
    return task, Problem(problem_id, task.name, task.task_type, "", answer=answer, entry_point=entry_point)


def mask(trace: str, task_type: str, answer: str | None = None, entry_point: str | None = None):
    task, problem = rules(task_type, answer=answer, entry_point=entry_point)
    return task.mask_trace(problem, trace)


def apply_typed(cond: Condition, trace: str, *, task_type: str, problem_id: str = "p1", answer: str | None = None,
                entry_point: str | None = None, **kw) -> Intervention:
    task, problem = rules(task_type, problem_id, answer, entry_point)
    return apply_condition(cond, trace, task=task, problem=problem, **kw)
