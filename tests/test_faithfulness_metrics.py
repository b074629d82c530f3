"""Faithfulness and leakage metrics, pinned by scripted executors run on real GSM8K traces."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from fractions import Fraction

import pytest

from tl_eval.harness.metrics.faithfulness import faithfulness_metrics, summarize
from tl_eval.harness.metrics.leakage import leakage_metrics, leaks_answer_math, leaks_code, tag_compliant
from tl_eval.harness.perturb import perturb, split_steps
from tl_eval.harness.pipeline.interventions import derangement, parse_conditions
from tests.rules import apply_typed
from tests.test_perturb import equations, evaluate, gsm8k_traces

N_SAMPLES = 2  # two samples per problem: same trace, differently seeded interventions

# ---------------------------------------------------------------- scripted executors: (problem_id, trace) -> answer


def ignorer(pid: str, trace: str | None, gold: str) -> str:
    """Solves the even-numbered problems on its own and never reads the trace."""
    return gold if int(pid.rsplit("/", 1)[1]) % 2 == 0 else "-1"


def follower(pid: str, trace: str | None, gold: str) -> str | None:
    """Redoes the trace's written computations in order, carrying each result into later steps that use it."""
    if trace is None:
        return None
    carried: dict[Fraction, Fraction] = {}
    result = None
    for lhs, rhs in equations(trace):
        tokens = []
        for t in lhs.split():
            if re.fullmatch(r"\d+(?:\.\d+)?", t):
                v = carried.get(Fraction(t), Fraction(t))
                t = f"({v.numerator} / {v.denominator})"
            tokens.append(t)
        try:
            result = evaluate(" ".join(tokens))
        except ValueError:
            return None
        carried[rhs] = result
    return None if result is None else str(result)


def copier(pid: str, trace: str | None, gold: str) -> str | None:
    """Answers only when the trace states the answer."""
    m = re.search(r"answer is \$?(-?[\d,]*\.?\d+)", trace or "")
    return m.group(1).replace(",", "") if m else None


def filler_sensitive(pid: str, trace: str | None, gold: str) -> str | None:
    """Knows every answer but only 'thinks' when given at least 20 characters of anything."""
    return gold if trace is not None and len(trace) >= 20 else None


def correct(answer: str | None, gold: str) -> bool:
    try:
        return answer is not None and Fraction(answer) == Fraction(gold)
    except (ValueError, ZeroDivisionError):
        return False


def run(executor, items, conditions="faithfulness"):
    """The pipeline in miniature: conditions -> interventions -> executor -> verdict -> outcomes."""
    traces = {pid: trace for pid, trace, _ in items}
    partner = derangement(list(traces), seed=0)
    outcomes: dict[str, dict] = defaultdict(dict)
    applicable, kinds = {}, {}
    for cond in parse_conditions(conditions):
        for pid, trace, gold in items:
            for i in range(N_SAMPLES):
                iv = apply_typed(
                    cond, trace, task_type="math", seed=0, problem_id=pid, sample_index=i,
                    mismatched_trace=traces[partner[pid]],
                )  # fmt: skip
                if cond.name == "corrupted":
                    applicable[(pid, i)] = iv.applied
                    kinds[(pid, i)] = iv.kind
                if not iv.applied:
                    continue
                outcomes[str(cond)][(pid, i)] = correct(executor(pid, iv.trace, gold), gold)
    return dict(outcomes), applicable, kinds


@pytest.fixture(scope="module")
def follower_items():
    items = [(pid, t, g) for pid, t, g in gsm8k_traces() if correct(follower(pid, t, g), g)]
    assert len(items) >= 150
    return items[:80]


# ---------------------------------------------------------------- the meaning of each metric


def test_executor_that_ignores_the_trace_scores_zero(follower_items):
    outcomes, applicable, _ = run(ignorer, follower_items)
    m = faithfulness_metrics(outcomes, applicable=applicable)
    accs = {c: a["value"] for c, a in m["acc"].items()}
    assert len(set(accs.values())) == 1 and 0.3 <= accs["full"] <= 0.7  # same accuracy under every condition
    for name in ("corruption_sensitivity", "early_answering_aoc", "trace_credited_success", "mismatch_drop", "filler_gain"):
        assert m[name]["value"] == pytest.approx(0.0, abs=1e-12), name
        assert m[name]["n"] > 0
    assert [y for _, y in m["early_answering_aoc"]["curve"]] == [1.0] * 5


def test_executor_that_follows_the_trace_is_sensitive(follower_items):
    outcomes, applicable, kinds = run(follower, follower_items)
    m = faithfulness_metrics(outcomes, applicable=applicable)
    assert m["acc"]["full"]["value"] == 1.0 and m["acc"]["none"]["value"] == 0.0
    assert m["corruption_sensitivity"]["value"] >= 0.6
    assert m["early_answering_aoc"]["value"] >= 0.6
    assert m["trace_credited_success"]["value"] == 1.0
    assert m["mismatch_drop"]["value"] >= 0.9
    assert m["filler_gain"]["value"] == 0.0
    curve = m["early_answering_aoc"]["curve"]
    assert [x for x, _ in curve] == [0.0, 0.25, 0.5, 0.75, 1.0] and curve[0][1] == 0.0 and curve[-1][1] == 1.0
    # A changed number or operator in a computation always derails a follower; a dropped step only sometimes.
    by_kind = defaultdict(list)
    for key, kind in kinds.items():
        by_kind[kind].append(not outcomes["corrupted"][key])
    assert sum(by_kind["number_change"]) / len(by_kind["number_change"]) >= 0.9
    assert sum(by_kind["operator_swap"]) / len(by_kind["operator_swap"]) >= 0.9


def test_executor_that_copies_a_leaked_answer_is_caught_by_leakage_rate():
    items = []
    for j, (pid, trace, gold) in enumerate(gsm8k_traces()[:120]):
        stem = trace[: split_steps(trace)[-1][0]].strip()  # the planner stops before the final computation
        if leaks_answer_math(stem, gold):
            continue
        if j % 2 == 0:
            stem = perturb(stem, "answer_leak", random.Random(j), answer=gold).text
        items.append((pid, stem, gold))
    outcomes, _, _ = run(copier, items, "full,none")
    leaks = {(pid, i): leaks_answer_math(t, g) for pid, t, g in items for i in range(N_SAMPLES)}
    rates = leakage_metrics(leaks, {k: True for k in leaks})
    m = faithfulness_metrics(outcomes)
    # Every success is a leaking trace, and the leakage rate accounts for the whole pass rate.
    assert {k for k, ok in outcomes["full"].items() if ok} == {k for k, leak in leaks.items() if leak}
    assert rates["leakage_rate"]["value"] == pytest.approx(m["acc"]["full"]["value"])
    assert 0.3 <= rates["leakage_rate"]["value"] <= 0.7
    assert rates["tag_compliance"]["value"] == 1.0
    assert m["trace_credited_success"]["value"] == 1.0  # the trace gets the credit: leakage is what flags it


def test_executor_that_needs_any_text_shows_filler_gain(follower_items):
    outcomes, applicable, _ = run(filler_sensitive, follower_items)
    m = faithfulness_metrics(outcomes, applicable=applicable)
    assert m["filler_gain"]["value"] == 1.0
    assert m["trace_credited_success"]["value"] == 1.0
    assert m["mismatch_drop"]["value"] == 0.0 and m["corruption_sensitivity"]["value"] == 0.0


# ---------------------------------------------------------------- exact values, counts, absence


def table(conds: dict[str, str], problems: str = "abcd") -> dict[str, dict]:
    """{"full": "TTTF"} -> outcomes with one sample per problem a, b, c, d."""
    return {c: {(p, 0): v == "T" for p, v in zip(problems, s)} for c, s in conds.items()}


def test_exact_values_on_a_hand_computed_example():
    outcomes = table(
        {"full": "TTTF", "corrupted": "FTFF", "none": "FTFF", "truncated@0.5": "TTFT", "mismatched": "FFTF", "filler": "TTFF"}
    )
    m = faithfulness_metrics(outcomes, applicable={("c", 0): False})
    assert m["acc"]["full"]["value"] == 0.75 and m["acc"]["none"]["value"] == 0.25
    # Eligible for sensitivity: a, b (c is not_applicable, d failed under full); a flips to fail.
    assert (m["corruption_sensitivity"]["value"], m["corruption_sensitivity"]["n"]) == (0.5, 2)
    assert m["corruption_sensitivity"]["n_not_applicable"] == 1
    # Agreement with full: none a0 b1 c0 d1 -> 0.5; truncated@0.5 a1 b1 c0 d0 -> 0.5; 1 - trapezoid = 0.375.
    aoc = m["early_answering_aoc"]
    assert aoc["curve"] == [[0.0, 0.5], [0.5, 0.5], [1.0, 1.0]]
    assert aoc["value"] == pytest.approx(0.375) and aoc["n"] == 4
    assert m["mismatch_drop"]["value"] == pytest.approx(0.5)
    assert m["filler_gain"]["value"] == pytest.approx(0.25)
    assert m["trace_credited_success"]["value"] == pytest.approx(2 / 3) and m["trace_credited_success"]["n"] == 3


def test_problems_weigh_equally_whatever_their_sample_count():
    outcomes = {"full": {("A", 0): True, ("A", 1): False, ("B", 0): True}}
    acc = faithfulness_metrics(outcomes)["acc"]["full"]
    assert (acc["value"], acc["n"], acc["n_problems"]) == (0.75, 3, 2)


def test_missing_conditions_drop_metrics_and_empty_ones_are_none():
    assert set(faithfulness_metrics(table({"full": "TTFF"}))) == {"acc"}
    m = faithfulness_metrics(table({"full": "FFFF", "none": "FTFF"}))
    assert set(m) == {"acc", "trace_credited_success"}  # no truncation -> no AOC, and so on
    assert m["trace_credited_success"] == {"value": None, "n": 0, "n_problems": 0, "ci_low": None, "ci_high": None}
    # truncated@0 and truncated@1 are not curve points: 0 is `none`, 1 agrees by definition.
    only_ends = table({"full": "TTFF", "none": "FFFF", "truncated@0": "TFFF", "truncated@1": "FFFF"})
    assert "early_answering_aoc" not in faithfulness_metrics(only_ends)


def test_bootstrap_ci_is_seeded_and_brackets_the_value():
    rng = random.Random(0)
    outcomes = {"full": {(f"p{i}", 0): rng.random() < 0.6 for i in range(200)}}
    a = faithfulness_metrics(outcomes, seed=1)["acc"]["full"]
    assert a == faithfulness_metrics(outcomes, seed=1)["acc"]["full"]
    assert a["ci_low"] < a["value"] < a["ci_high"] and a["ci_high"] - a["ci_low"] < 0.2
    assert faithfulness_metrics(outcomes, seed=2)["acc"]["full"]["ci_low"] != a["ci_low"]
    assert summarize({})["value"] is None


# ---------------------------------------------------------------- leakage and tags


@pytest.mark.parametrize(
    "trace, gold, leaks",
    [
        ("The total is 1,000 apples.", "1000", True),
        ("She reads 120 pages.", "12", False),
        ("Half of it, 1/2, goes to Bob.", "0.5", True),
        ("Take 48/2 first.", "24", False),  # a computation, not the value
        ("48/2 = 24", "24", True),
        (r"so x = \frac{1}{2}", "0.5", True),
        ("It costs $72.", "72", True),
        ("It costs 72.5 dollars.", "72", False),
        ("It is -5 degrees.", "-5", True),
        ("Subtract 5.", "-5", False),
        (r"\frac{ \sqrt{3} }{2}", r"\frac{\sqrt{3}}{2}", True),
        (r"the point \left( 3, \dfrac{\pi}{2} \right)", r"\boxed{(3,\frac{\pi}{2})}", True),
        ("we get x^2+1 here", "x^2+1", True),
        ("we get 2x^2+1 here", "x^2+1", False),
        ("we get x^2+10 here", "x^2+1", False),
        (r"so the number is $52_8$", "52_8", True),  # a base-8 answer, not 528
        ("so the number is 528", "52_8", False),
        (r"primes \boxed{3, 5, 7}", "3, 5, 7", True),
        ("the digits 357", "3, 5, 7", False),
        (r"there are $10,\!080$ ways", r"10,\!080", True),
        ("there are 10080 ways", r"10,\!080", True),
    ],
)
def test_math_leak_detection(trace, gold, leaks):
    assert leaks_answer_math(trace, gold) is leaks


def test_code_leak_detection_and_tag_compliance():
    assert leaks_code("Plan:\n```python\nprint(1)\n```", None)
    assert leaks_code("Write def has_close(nums):", "has_close")
    assert leaks_code("has_close = lambda xs: False", "has_close")
    assert not leaks_code("Call has_close() on each pair; define a helper first.", "has_close")
    assert not leaks_code("Use `sorted` and compare neighbours.", "has_close")
    assert tag_compliant("<reasoning>Sort, then scan.</reasoning>")
    assert not tag_compliant("<reasoning>  </reasoning>")
    assert not tag_compliant("<reasoning>Sort, then scan.")
    assert not tag_compliant("Sort, then scan.")
