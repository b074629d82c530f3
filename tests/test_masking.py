"""The `masked` condition's rule: what leaked is gone, the rest of the trace stays, and non-leaking traces are left."""

from __future__ import annotations

import pytest

from tl_eval.harness.metrics.leakage import leaks_answer_math, leaks_code
from tl_eval.harness.metrics.masking import PLACEHOLDER
from tests.rules import apply_typed, mask
from tl_eval.harness.pipeline.interventions import FAITHFULNESS_SET, Condition, parse_conditions


@pytest.mark.parametrize("trace, gold", [
    ("3 apples + 15 = 18. So the answer is 18.00 dollars, i.e. $18.", "18"),
    ("Half of 36 is 36/2 = 18, and 1,800 cents is 18 dollars.", "18"),
    ("The total is 1,234 marbles.", "1234"),
    ("So x = \\frac{3}{4}, which is 0.75.", "\\frac{3}{4}"),
    ("We get \\dfrac{\\sqrt{3}}{2} here, so \\frac{ \\sqrt{3} }{2}.", "\\frac{\\sqrt{3}}{2}"),
    ("The answer is \\boxed{-5}.", "-5"),
    ("Ten,\\!080 ways: 10,\\!080.", "10080"),
])
def test_math_mask_removes_every_leak(trace, gold):
    assert leaks_answer_math(trace, gold)
    masked, spans = mask(trace, "math", answer=gold)
    assert spans and PLACEHOLDER in masked
    assert not leaks_answer_math(masked, gold), masked


def test_math_mask_keeps_the_method():
    trace = "Multiply 3 by 6 to get 18, then subtract 4."
    masked, _ = mask(trace, "math", answer="18")
    assert masked == f"Multiply 3 by 6 to get {PLACEHOLDER}, then subtract 4."


def test_math_no_leak_is_not_applicable():
    assert mask("Multiply the price by the count.", "math", answer="18") is None
    assert mask("180 is not the answer", "math", answer="18") is None


def test_code_mask_removes_fences_and_definitions():
    trace = ("Loop over the items and keep a running max.\n```python\ndef biggest(xs):\n    return max(xs)\n```\n"
             "Or: def biggest(xs):\n    m = xs[0]\n    return m\nEdge case: empty list.\nbiggest = lambda xs: max(xs)\n")
    assert leaks_code(trace, "biggest")
    masked, spans = mask(trace, "code", entry_point="biggest")
    assert not leaks_code(masked, "biggest")
    assert "running max" in masked and "Edge case: empty list." in masked
    assert len(spans) == 3


def test_code_unclosed_fence_runs_to_the_end():
    masked, _ = mask("Plan first.\n```python\ndef f():\n    pass", "code", entry_point="f")
    assert masked == "Plan first.\n"


def test_condition_records_what_was_removed():
    trace = "Add 10 and 8 to get 18."
    iv = apply_typed(Condition("masked"), trace, task_type="math", seed=0, problem_id="p", sample_index=0,
                         answer="18")
    assert iv.applied and iv.kind == "mask" and iv.removed == [[20, 22]] and "'18'" in iv.note
    assert iv.to_dict()["removed"] == [[20, 22]]
    iv = apply_typed(Condition("masked"), "Add the two numbers.", task_type="math", seed=0, problem_id="p",
                         sample_index=0, answer="18")
    assert not iv.applied and iv.same_as_full and iv.kind == "not_applicable"


def test_masked_is_in_the_faithfulness_set():
    assert "masked" in FAITHFULNESS_SET
    assert Condition("masked") in parse_conditions("faithfulness")
    assert [str(c) for c in parse_conditions("masked")] == ["full", "none", "masked"]
