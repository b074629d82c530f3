"""The rubric-label rule: which dimensions each kind of negative lowers, and to what.

A reference trace gets 4 on every dimension. A negative starts from 4 and takes the labels below for the
dimensions its defect damages; the rest stay at 4 because the perturbation is localized.
"""

from __future__ import annotations

from tl_eval.training.groups.schema import MAX_LABEL, RUBRIC_DIMS, rubric_total

NEGATIVE_LABELS: dict[str, dict[str, dict[str, int]]] = {
    "math": {
        "number_change": {"calculation_correctness": 1, "answer_support": 2},
        "operator_swap": {"calculation_correctness": 1, "solution_strategy": 2, "answer_support": 2},
        "step_deletion": {"step_coherence": 1, "solution_strategy": 3, "answer_support": 2},
        "step_swap": {"step_coherence": 1, "answer_support": 3},
        "condition_flip": {"problem_understanding": 1, "solution_strategy": 2, "answer_support": 2},
        "off_by_one": {"calculation_correctness": 2, "answer_support": 2},
        # Math rubrics have no leakage dimension: a stated answer asserts rather than supports it.
        "answer_leak": {"answer_support": 0, "step_coherence": 3},
        "irrelevant_step": {"step_coherence": 2, "solution_strategy": 3},
        "wrong_strategy": {"solution_strategy": 0, "problem_understanding": 2, "step_coherence": 3,
                           "calculation_correctness": 3, "answer_support": 1},
    },
    "code": {
        "number_change": {"action_support": 1, "plan_quality": 3},
        "operator_swap": {"action_support": 1, "plan_quality": 2},
        "step_deletion": {"step_coherence": 1, "plan_quality": 2, "action_support": 2},
        "step_swap": {"step_coherence": 1, "action_support": 3},
        "condition_flip": {"task_understanding": 1, "plan_quality": 2, "action_support": 2},
        "off_by_one": {"action_support": 2, "plan_quality": 3},
        "answer_leak": {"non_leakage": 0},
        "irrelevant_step": {"step_coherence": 2, "plan_quality": 3},
        "wrong_strategy": {"plan_quality": 0, "task_understanding": 2, "step_coherence": 3, "action_support": 1},
    },
}


def positive_rubric(task_type: str) -> dict[str, float]:
    labels = {d: MAX_LABEL for d in RUBRIC_DIMS[task_type]}
    return {**labels, "total": rubric_total(labels, task_type)}


def negative_rubric(kind: str, task_type: str) -> dict[str, float]:
    """Labels of a negative of `kind`: 4 everywhere except the dimensions the rule above lowers."""
    rules = NEGATIVE_LABELS[task_type]
    if kind not in rules:
        raise KeyError(f"no rubric rule for negative kind {kind!r}; known: {', '.join(rules)}")
    labels = {d: rules[kind].get(d, MAX_LABEL) for d in RUBRIC_DIMS[task_type]}
    return {**labels, "total": rubric_total(labels, task_type)}
