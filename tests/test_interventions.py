"""Trace conditions: parsing `--conditions`, deterministic interventions, derangements."""

from __future__ import annotations

import pytest

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.perturb import CODE_KINDS, MATH_KINDS, split_steps
from tl_eval.harness.pipeline.interventions import (
    FAITHFULNESS_SET,
    Condition,
    derangement,
    filler,
    paraphrase_messages,
    parse_conditions,
)
from tests.rules import apply_typed
from tests.test_perturb import PLANS, gsm8k_traces

FOUR_STEPS = "Step one is here.\nStep two is here.\nStep three is here.\nStep four is here."


def names(conds):
    return [str(c) for c in conds]


# ---------------------------------------------------------------- parsing


def test_named_set_expands_in_order():
    assert names(parse_conditions("faithfulness")) == list(FAITHFULNESS_SET)
    assert FAITHFULNESS_SET == (
        "full", "none", "truncated@0.25", "truncated@0.5", "truncated@0.75", "corrupted", "filler", "mismatched",
        "masked",
    )  # fmt: skip


def test_full_and_none_always_first_and_duplicates_dropped():
    assert names(parse_conditions("corrupted")) == ["full", "none", "corrupted"]
    assert names(parse_conditions(" truncated@0.50, none ,truncated@.5,Paraphrased,faithfulness")) == [
        "full", "none", "truncated@0.5", "paraphrased", "truncated@0.25", "truncated@0.75", "corrupted", "filler",
        "mismatched", "masked",
    ]  # fmt: skip
    assert str(Condition("truncated", 0.25)) == "truncated@0.25" and str(Condition("filler")) == "filler"
    assert parse_conditions("truncated@0.5")[2] == Condition("truncated", 0.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty --conditions"),
        ("full,bogus", "unknown condition 'bogus'"),
        ("truncated", "needs a fraction"),
        ("truncated@1.5", "bad truncation fraction"),
        ("truncated@-0.1", "bad truncation fraction"),
        ("truncated@half", "bad truncation fraction"),
        ("truncated@nan", "bad truncation fraction"),
    ],
)
def test_bad_conditions_name_problem_and_fix(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_conditions(text)
    assert err.value.fix


# ---------------------------------------------------------------- each condition


def apply(cond: str, trace: str, **kw):
    kw = {"task_type": "math", "seed": 0, "problem_id": "p1", "sample_index": 0, **kw}
    condition = next(c for c in parse_conditions(cond) if c.name == cond.split("@")[0])
    return apply_typed(condition, trace, **kw)


def test_full_and_none():
    full, none = apply("full", FOUR_STEPS), apply("none", FOUR_STEPS)
    assert (full.trace, full.applied, full.span) == (FOUR_STEPS, True, None)
    assert (none.trace, none.applied, none.span) == (None, True, (0, len(FOUR_STEPS)))
    assert none.to_dict()["span"] == [0, len(FOUR_STEPS)]


@pytest.mark.parametrize("fraction, kept", [(0.0, 0), (0.25, 1), (0.5, 2), (0.75, 3), (1.0, 4), (0.6, 2), (0.625, 3)])
def test_truncation_keeps_first_steps(fraction, kept):
    iv = apply(f"truncated@{fraction}", FOUR_STEPS)
    assert iv.kind == "truncate_steps" and iv.applied
    assert iv.trace == "\n".join(FOUR_STEPS.split("\n")[:kept])
    assert iv.span == (len(iv.trace), len(FOUR_STEPS))


def test_truncation_rounds_half_up_and_falls_back_to_tokens():
    three = "A one.\nB two.\nC three."
    assert apply("truncated@0.5", three).trace == "A one.\nB two."  # 1.5 steps -> 2, not banker's 2/1 flip
    single = "one two three four five six seven eight"
    iv = apply("truncated@0.25", single)
    assert (iv.kind, iv.trace) == ("truncate_tokens", "one two")


def test_corrupted_math_trace_is_seeded_per_problem_and_sample():
    _, trace, _ = gsm8k_traces()[4]
    base = apply("corrupted", trace, seed=7, problem_id="gsm8k/4", sample_index=1)
    assert base.applied and base.kind in MATH_KINDS and base.trace != trace
    a, b = base.span
    assert trace[:a] == base.trace[:a] and trace[b:] == base.trace[len(base.trace) - (len(trace) - b) :]
    assert apply("corrupted", trace, seed=7, problem_id="gsm8k/4", sample_index=1) == base
    variants = {
        (iv.kind, iv.span, iv.trace)
        for iv in (apply("corrupted", trace, seed=s, problem_id="gsm8k/4", sample_index=i) for s in range(4) for i in range(4))
    }
    assert len(variants) >= 4  # seed and sample index both feed the rng


def test_corrupted_uses_kinds_of_the_task_type_and_reports_not_applicable():
    iv = apply("corrupted", PLANS[0], task_type="code")
    assert iv.applied and iv.kind in CODE_KINDS
    na = apply("corrupted", "Think it through.", task_type="code")
    assert (na.applied, na.kind, na.span, na.trace) == (False, "not_applicable", None, "Think it through.")
    assert "condition_flip" in na.note
    with pytest.raises(ConfigError, match="unknown task type"):
        apply("corrupted", PLANS[0], task_type="chess")


def test_corruption_applies_to_nearly_all_gsm8k_traces():
    traces = gsm8k_traces()
    ivs = [apply("corrupted", t, problem_id=pid) for pid, t, _ in traces]
    assert sum(iv.applied for iv in ivs) == len(traces)
    kinds = {iv.kind for iv in ivs}
    assert kinds == set(MATH_KINDS)  # every math kind gets chosen somewhere


def test_filler_has_the_length_and_no_content():
    _, trace, _ = gsm8k_traces()[0]
    iv = apply("filler", trace)
    assert len(iv.trace) == len(trace) and iv.kind == "filler"
    assert not any(c.isalnum() for c in iv.trace)
    assert filler(0) == "" and len(filler(7)) == 7


def test_mismatched_and_paraphrased():
    iv = apply("mismatched", "mine", mismatched_trace="theirs")
    assert (iv.trace, iv.applied, iv.kind) == ("theirs", True, "mismatched")
    lonely = apply("mismatched", "mine")
    assert (lonely.applied, lonely.kind) == (False, "not_applicable")
    para = apply("paraphrased", "mine", paraphrase="my words")
    assert (para.trace, para.applied) == ("my words", True)
    skipped = apply("paraphrased", "mine")
    assert not skipped.applied and "--paraphraser" in skipped.note


# ---------------------------------------------------------------- derangement and paraphrase prompt


@pytest.mark.parametrize("n", [2, 3, 5, 17, 100])
def test_derangement_has_no_fixed_points_and_is_a_permutation(n):
    ids = [f"task/{i}" for i in range(n)]
    d = derangement(ids, seed=3)
    assert set(d) == set(ids) and sorted(d.values()) == sorted(ids)
    assert all(k != v for k, v in d.items())


def test_derangement_is_seeded_and_order_independent():
    ids = [f"p{i}" for i in range(10)]
    assert derangement(ids, 1) == derangement(list(reversed(ids)), 1)
    assert len({tuple(sorted(derangement(ids, s).items())) for s in range(10)}) >= 5
    assert derangement(["only"], 0) == {} and derangement([], 0) == {}
    with pytest.raises(ValueError, match="distinct"):
        derangement(["a", "a", "b"], 0)


def test_paraphrase_prompt_carries_the_trace():
    msgs = paraphrase_messages("48/2 = 24 clips")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "48/2 = 24 clips" in msgs[-1]["content"]
    assert "keep every step" in msgs[0]["content"]


def test_truncated_steps_match_split_steps_on_real_traces():
    for pid, trace, _ in gsm8k_traces()[:50]:
        n = len(split_steps(trace))
        for f in (0.25, 0.5, 0.75):
            iv = apply(f"truncated@{f}", trace, problem_id=pid)
            assert len(split_steps(iv.trace)) == int(f * n + 0.5)
            assert trace.startswith(iv.trace)
