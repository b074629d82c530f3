"""Planners that are not a model spec: `--planner reference` (the task's own reference plan) and `--planner self`
(the executor's own model as planner). Resolved here so that model specs (harness/models) stay about models."""

from __future__ import annotations

from dataclasses import dataclass

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.task import Task
from tl_eval.harness.types import Generation, Problem

REFERENCE = "reference"
SELF = "self"
# How runs, configs and leaderboard rows name these systems.
REFERENCE_SYSTEM = "reference plan"
SELF_SYSTEM = "self-planner"
# Stands for the planner in the run id and the cache: the rule's version, bumped when a task's rule changes.
REFERENCE_FINGERPRINT = "reference-plan:v1"


@dataclass(frozen=True)
class PlannerChoice:
    """What `--planner` resolved to: a model spec to load (None for the reference plan), and the named system."""

    spec: str | None
    system: str | None  # REFERENCE_SYSTEM, SELF_SYSTEM, or None for an ordinary model spec
    run_name: str | None  # the run id's first part, when the system names it


def resolve_planner(planner: str, executor: str) -> PlannerChoice:
    """`reference` -> no model; `self` -> the executor's spec; anything else is a model spec."""
    if planner == REFERENCE:
        return PlannerChoice(None, REFERENCE_SYSTEM, "reference-plan")
    if planner == SELF:
        return PlannerChoice(executor, SELF_SYSTEM, "self-planner")
    return PlannerChoice(planner, None, None)


def check_reference_plans(tasks: list[tuple[Task, list[Problem], int]]) -> None:
    """Every problem of every task must have a reference plan: a precondition of `--planner reference`."""
    for task, problems, _ in tasks:
        missing = [p.problem_id for p in problems if not (task.reference_plan(p) or "").strip()]
        if missing:
            raise ConfigError(f"--planner reference: task {task.name} has no reference plan for {len(missing)} of "
                              f"{len(problems)} problems (e.g. {missing[0]})",
                              "use a task with reference solutions (gsm8k, math500, humaneval, mbpp) or another --planner")


def reference_generation(task: Task, problem: Problem) -> Generation:
    """The planner's turn of the reference planner: the plan, written by no model (no tokens, no time)."""
    return Generation(text=task.reference_plan(problem) or "", finish_reason="stop")
