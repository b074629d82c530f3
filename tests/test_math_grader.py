"""Math grader: extraction pipelines, exact and math-verify comparisons, the worker pool, dataset selfchecks."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from tl_eval.harness.errors import ConfigError, DataError
from tl_eval.harness.verify.math_extract import extract_answer, extract_flexible, extract_strict, read_answer, to_fraction
from tl_eval.harness.verify.math_grader import (
    MathGrader,
    MathVerifyPool,
    exact_match,
    extract_answer,
    gold_from_gsm8k,
    gold_from_math_solution,
    math_verify_equal,
)

DATA = Path(os.environ.get("TL_EVAL_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
HANG = r"\boxed{9^{9^{9^{9}}}}"  # sympy tries to evaluate the tower: it runs for minutes in C code
HERE = "tests.test_math_grader"


# Functions the pool's workers import by name (module:function).
def crash_on_boom(gold: str, pred: str):
    if pred == "boom":
        os._exit(3)
    return gold == pred


def sleep_forever(gold: str, pred: str):
    time.sleep(3600)


def raise_value_error(gold: str, pred: str):
    raise ValueError("broken comparison")


def _rows(name: str) -> list[dict]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}; set TL_EVAL_DATA_DIR to the shared data folder")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def grader():
    with MathGrader(pipeline="strict", timeout_s=5.0, workers=1) as g:
        yield g


# --- extraction -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She makes 9 * 2 = $18.\n#### 18", "18"),
        ("#### 1,000\n", "1,000"),
        ("first #### 3\nthen #### 4", "4"),
        (r"so $x = \boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        (r"\boxed{1} and later \boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces do not close the box
        (r"\boxed{7} then cut off \boxed{\frac{1}{", "7"),  # the unfinished last box is skipped
        (r"\boxed 5 done", "5"),
        ("The answer is 42.", "42"),
        ("the answer is: -3.5.", "-3.5"),
        (r"Final Answer: The final answer is $\frac{1}{2}$. I hope it is correct.", r"\frac{1}{2}"),
        ("**Final Answer:** 1,000 dollars", "1,000 dollars"),
        ("**Final Answer**: $5$", "5"),
        (r"The answer is $\boxed{9}$.", "9"),
        (r"#### 3" + "\n" + r"or maybe \boxed{4}", "3"),  # a hedged box is not the answer committed to
        (r"\boxed{4}. The answer is 5.", "5"),  # position decides, not the kind of marker (was "4": kind first)
        # after a marker or phrase, the answer is what follows it, not the last number of the sentence
        ("The answer is 3 apples, and 7 oranges were left.", "3"),
        ("#### 3 apples, and 7 oranges", "3"),
        ("Answer: 5", "5"),
        ("The answer is 12 (twelve).", "12"),
        ("The answer is x = 5 because 2 + 3 = 5.", "x = 5"),
        ("The answer is 19, 46, and 82.", "19, 46, and 82"),  # a list stays whole
        ("The answer is 5 or 6.", "5 or 6"),  # a hedge stays whole, so it equals neither
        (r"The final answer is $x = 2$ or $x = 3$.", r"x = 2 \text{ or } x = 3"),
        ("The answer is $18 and $7 is left.", "$18"),  # dollar amounts, not a math span
        ("The answer is at least 3.", "at least 3"),
        ("The answer is Evelyn.", "Evelyn"),
        ("I think it is 12 apples", None),
        ("", None),
    ],
)
def test_strict_extraction(text, expected):
    assert extract_strict(text) == expected
    assert extract_answer(text, "strict") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("it costs $1,000.", "1000"),
        ("3/4 of the class", "3/4"),
        ("a drop of 50%", "50"),
        ("temperature is -5 degrees", "-5"),
        ("3-5 = -2", "-2"),
        ("so 10-3 is 7", "7"),
        ("we get 0.5.", "0.5"),
        ("only .25 left", ".25"),
        (r"so it is -\frac{3}{4}", "-3/4"),
        (r"x = \frac{-3}{4}", "-3/4"),
        (r"\frac12 of it", "1/2"),
        ("values 1,2,3", "3"),
        ("\u22127 with a unicode minus", "-7"),
        ("no digits here", None),
    ],
)
def test_flexible_extraction(text, expected):
    assert extract_flexible(text) == expected
    assert extract_answer(text, "flexible") == expected


def test_unknown_pipeline_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        extract_answer("#### 1", "lenient")
    assert "strict" in str(err.value) and "flexible" in str(err.value)
    with pytest.raises(ConfigError):
        MathGrader(pipeline="lenient")


def test_bad_grader_settings_are_config_errors():
    with pytest.raises(ConfigError):
        MathGrader(timeout_s=0)
    with pytest.raises(ConfigError):
        MathGrader(workers=0)


def test_gold_helpers():
    assert gold_from_gsm8k("Janet sells 9 eggs.\n#### 1,250") == "1250"
    with pytest.raises(DataError):
        gold_from_gsm8k("no marker here")
    assert gold_from_math_solution(r"so $\boxed{\frac{\sqrt{21}}{5}}$.") == r"\frac{\sqrt{21}}{5}"
    assert gold_from_math_solution("no box") is None


@pytest.mark.parametrize(
    "text, value",
    [
        ("18", Fraction(18)),
        ("2,125", Fraction(2125)),
        (r"\$32,\!348", Fraction(32348)),
        (r"10,\!080", Fraction(10080)),
        (r"-\dfrac{17}{50}", Fraction(-17, 50)),
        (r"\frac{-3}{4}", Fraction(-3, 4)),
        ("3/4", Fraction(3, 4)),
        ("-.5", Fraction(-1, 2)),
        (r"50\%", Fraction(50)),
        ("18 dollars", Fraction(18)),
        (r"5\text{ cm}", Fraction(5)),
        (r"90^\circ", Fraction(90)),
        ("42.", Fraction(42)),
        ("5x", None),  # algebra, not a unit
        ("5 x", None),
        ("5 and 6", None),
        ("2 hundred", None),  # a scaling word is not a unit
        ("3 or more", None),
        ("8 in total", Fraction(8)),
        ("1 2", None),  # two numbers must not merge into 12
        ("(1,2)", None),
        (r"\sqrt{2}", None),
        ("1/0", None),
        ("1e5", None),  # no exponents: a literal like 1e999999999 must not be expanded
        (None, None),
    ],
)
def test_to_fraction(text, value):
    assert to_fraction(text) == value


def test_exact_match_is_none_unless_both_sides_are_numbers():
    assert exact_match("0.5", r"\frac{1}{2}") is True
    assert exact_match("0.50001", r"\frac{1}{2}") is False
    assert exact_match(r"\sqrt{2}", "1.4142") is None
    assert exact_match("3", r"\text{Evelyn}") is None


@pytest.mark.parametrize(
    "gold, pred, equal",
    [
        (r"\frac{1}{20!}", r"\frac{1}{21!}", False),  # exact values: no tolerance, however small they are
        (r"10^{-30}", r"10^{-31}", False),
        (r"(1, \frac{1}{20!})", r"(1, \frac{1}{21!})", False),  # inside tuples too
        ("0.0000001", "0.0000002", False),  # two finite decimals compare exactly
        (r"\frac{1}{4}", "0.2500001", False),
        (r"\frac{1}{3}", "0.333", False),  # a decimal for 1/3 needs 6 significant figures
        (r"\frac{1}{3}", "0.333333", True),
        (r"\frac{1}{3000000}", "0.0000003", False),  # relative, not only 6 decimal places
        (r"\frac{1}{20!}", r"\frac{1}{2432902008176640000}", True),
        (r"\frac{\sqrt{2}}{2}", r"0.5\sqrt{2}", True),
        ("10^{-30}", "1e-30", True),  # scientific notation is read exactly
        ("50", r"50\%", True),
    ],
)
def test_exactness_rule(gold, pred, equal):
    assert math_verify_equal(gold, pred) is equal


# --- grading --------------------------------------------------------------------------------------------


def test_verdicts_record_both_comparisons(grader):
    outputs = [
        "2 + 2 = 4\n#### 4",
        r"Thus the height is $\boxed{\sqrt{3}/2}$.",  # symbolic: only math-verify can tell
        "The answer is 18 dollars.",  # units: read as the quantity 18 before both comparisons
        "#### 5",
        "I am not sure.",
    ]
    golds = ["4", r"\frac{\sqrt{3}}{2}", "18", "6", "3"]
    v = grader.grade(outputs, golds)
    assert [x.status for x in v] == ["pass", "pass", "pass", "fail", "no_answer"]
    assert set(v[0].details) == {
        "pipeline", "extracted_strict", "extracted_flexible", "exact_match", "math_verify", "gold", "answer_read",
    }
    assert (v[0].details["exact_match"], v[0].details["math_verify"]) == (True, True)
    assert (v[1].details["exact_match"], v[1].details["math_verify"]) == (None, True)
    assert (v[2].details["exact_match"], v[2].details["math_verify"]) == (True, True)
    assert v[2].details["answer_read"] == "18" and v[4].details["answer_read"] is None
    assert (v[3].details["exact_match"], v[3].details["math_verify"]) == (False, False)
    assert v[4].details["math_verify"] is None and v[4].details["extracted_flexible"] is None
    # only the grader's own pipeline extracts: the other one would double the time of every grade
    assert v[2].details["extracted_strict"] == "18 dollars" and v[2].details["extracted_flexible"] is None
    assert v[1].details["gold"] == r"\frac{\sqrt{3}}{2}"


def test_flexible_pipeline_takes_the_last_number():
    with MathGrader(pipeline="flexible") as g:
        v = g.grade(["so we have 3 apples, 2 pears and 1,000 grapes", "nothing"], ["1000", "1"])
    assert [x.status for x in v] == ["pass", "no_answer"]
    assert v[0].details["pipeline"] == "flexible" and v[0].details["extracted_strict"] is None


def test_grade_answers_takes_extracted_answers(grader):
    v = grader.grade_answers([r"\frac{1}{2}", None, "7"], ["0.5", "1", "8"])
    assert [x.status for x in v] == ["pass", "no_answer", "fail"]
    assert v[0].details["pipeline"] == "given"


def test_input_errors(grader):
    with pytest.raises(ValueError):
        grader.grade(["#### 1"], ["1", "2"])
    with pytest.raises(DataError):
        grader.grade(["#### 1"], [None])


def test_timeout_is_recorded_and_the_worker_replaced():
    with MathGrader(timeout_s=1.0) as g:
        start = time.monotonic()
        v = g.grade([HANG, "#### 7"], ["1", "7"])
        assert time.monotonic() - start < 30
        assert v[0].details["math_verify"] == "timeout"
        assert v[0].status == "fail" and v[0].details["exact_match"] is None
        assert v[1].status == "pass" and v[1].details["math_verify"] is True
        assert g.counts["timeouts"] == 1 and g.counts["worker_restarts"] == 1
        # the pool still works after the kill
        assert g.grade(["#### 2"], ["2"])[0].details["math_verify"] is True


def test_timeout_falls_back_to_exact_comparison():
    with MathGrader(timeout_s=0.5) as g:
        g._pool = MathVerifyPool(1, 0.5, fn=f"{HERE}:sleep_forever")
        v = g.grade(["#### 1,000", "#### 3"], ["1000", "4"])
    assert [x.details["math_verify"] for x in v] == ["timeout", "timeout"]
    assert [x.status for x in v] == ["pass", "fail"]


def test_grading_from_a_thread_keeps_the_hard_timeout():
    # math-verify's own signal-based timeouts do nothing in threads; the pool's deadline must still hold.
    out = {}

    def work():
        with MathGrader(timeout_s=1.0) as g:
            out["v"] = g.grade([HANG], ["1"])

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert not t.is_alive()
    assert out["v"][0].details["math_verify"] == "timeout"


def test_crashed_worker_is_replaced():
    pool = MathVerifyPool(1, 10.0, fn=f"{HERE}:crash_on_boom")
    try:
        results = pool.run([("a", "a"), ("a", "boom"), ("b", "b"), ("b", "c")])
    finally:
        pool.close()
    assert [r[0] for r in results] == [True, "error", True, False]
    assert "exit code 3" in results[1][2]
    assert pool.counts["worker_restarts"] == 1 and pool.counts["workers_started"] == 2


def test_exception_in_comparison_is_an_error_not_a_crash():
    pool = MathVerifyPool(1, 10.0, fn=f"{HERE}:raise_value_error")
    try:
        results = pool.run([("1", "1"), ("2", "2")])
    finally:
        pool.close()
    assert [r[0] for r in results] == ["error", "error"]
    assert "broken comparison" in results[0][2]
    assert pool.counts["workers_started"] == 1


def test_pool_is_lazy_small_and_closes():
    g = MathGrader(workers=2)
    assert g._pool is None  # nothing started before the first grade
    g.grade(["nothing here"], ["1"])  # no answers, so still nothing to verify
    assert g._pool is None
    g.grade(["#### 1"], ["1"])
    assert g.counts["workers_started"] == 1  # one job needs only one worker
    procs = [w.proc for w in g._pool._workers]
    g.close()
    assert all(p.poll() is not None for p in procs)
    assert g.grade(["#### 2"], ["2"])[0].passed  # usable again after close
    assert g.counts["workers_started"] == 2 and g.counts["jobs"] == 2
    g.close()


def test_two_workers_grade_in_parallel_and_in_order():
    with MathGrader(workers=2) as g:
        v = g.grade([f"#### {i}" for i in range(6)], [str(i if i % 2 else i + 1) for i in range(6)])
        assert [x.status for x in v] == ["fail", "pass"] * 3
        assert g.counts["workers_started"] == 2


def test_repeated_pairs_are_verified_once(grader):
    before = grader.counts["jobs"]
    v = grader.grade(["#### 123456"] * 5, ["123456"] * 5)
    assert all(x.passed for x in v)
    assert grader.counts["jobs"] - before == 1


# --- selfcheck on the benchmark data --------------------------------------------------------------------


def _selfcheck_gsm8k(grader, rows):
    verdicts = grader.grade([r["answer"] for r in rows], [gold_from_gsm8k(r["answer"]) for r in rows])
    bad = [(r["answer"][-40:], v.details) for r, v in zip(rows, verdicts) if not v.passed]
    assert not bad, bad[:5]
    assert all(v.details["exact_match"] is True for v in verdicts)


def _selfcheck_math500(grader, rows):
    verdicts = grader.grade([r["solution"] for r in rows], [r["answer"] for r in rows])
    bad = [(r["answer"], v.details) for r, v in zip(rows, verdicts) if not v.passed]
    assert not bad, bad[:5]
    assert all(gold_from_math_solution(r["solution"]) is not None for r in rows)


def test_selfcheck_gsm8k_sample(grader):
    rows = _rows("gsm8k/test.jsonl")
    _selfcheck_gsm8k(grader, random.Random(0).sample(rows, 100))


def test_selfcheck_math500_sample(grader):
    rows = _rows("math500/test.jsonl")
    _selfcheck_math500(grader, random.Random(0).sample(rows, 100))


@pytest.mark.slow
def test_selfcheck_full_sets():
    gsm8k, math500 = _rows("gsm8k/test.jsonl"), _rows("math500/test.jsonl")
    assert len(gsm8k) == 1319 and len(math500) == 500
    with MathGrader(workers=2) as g:
        _selfcheck_gsm8k(g, gsm8k)
        _selfcheck_math500(g, math500)
        assert g.counts["timeouts"] == 0 and g.counts["errors"] == 0


def test_strict_match_pipeline_is_lm_evals_rule():
    # lm-eval's strict-match takes the first `#### N`, even a heading's number or a retracted answer.
    text = "#### 3. Total\n3 + 4 = 7\n#### 7\nWait, the answer is 8."
    assert extract_answer(text, "strict-match") == "3."
    assert extract_answer(text, "strict") == "8"
    assert extract_answer("The answer is 12.", "strict-match") is None
    with MathGrader(pipeline="strict-match") as g:
        v = g.grade(["#### 1,000 dollars\n#### 5", "#### 40\nThe answer is 36."], ["1000", "36"])
    assert [x.status for x in v] == ["pass", "fail"]
    assert v[0].details["pipeline"] == "strict-match"


def test_long_digit_runs_and_garbage_are_graded_without_raising(grader):
    # Fraction() of more than 4300 digits raises ValueError (int's digit limit): one such output must not
    # abort the whole batch.
    outputs = ["So the total is " + "9" * 5000, "The answer is " + "9" * 4400 + ".", "\\boxed{" + "7" * 5000 + "}",
               "x%$#@!{" * 15_000, "1" * 100_000, "#### " + "5" * 5000]
    v = grader.grade(outputs, ["9"] * len(outputs))
    assert all(x.status in ("fail", "no_answer") for x in v), [x.status for x in v]
    for pipeline in ("strict", "flexible"):
        for text in outputs:
            extract_answer(text, pipeline)


_SLOW_BEFORE = [  # 200 kB inputs that took seconds to minutes (quadratic or worse in the output length)
    "Answer: ", "the answer is ", "Q: x\n", "\\boxed{1}\n", "The answer is 18.\n", "The answer is \\boxed{5} ",
    "Final Answer: The final answer is $\\boxed{5}$. ", "#### 5\n", "\\boxed{" , "{", "So x. The answer is 3 hours and ",
]


@pytest.mark.parametrize("unit", _SLOW_BEFORE)
def test_extraction_is_linear_in_the_output_length(unit):
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    plain = ("lorem ipsum dolor sit amet " * 8000)[:200_000]
    for pipeline in ("strict", "flexible"):
        start = time.perf_counter()
        extract_answer(plain, pipeline)
        base = time.perf_counter() - start
        start = time.perf_counter()
        answer = extract_answer(text, pipeline)
        if answer is not None:
            read_answer(answer)
        took = time.perf_counter() - start
        # generous: the machine is shared; the quadratic versions took 2.5 s to over 100 s
        assert took < max(1.5, 40 * base), (unit, pipeline, took, base)
