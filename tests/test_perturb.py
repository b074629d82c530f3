"""Perturbations of real GSM8K rationales and code plans: localized (one span), seeded, and meaningful."""

from __future__ import annotations

import ast
import json
import os
import random
import re
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import pytest

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.metrics.leakage import leaks_answer_math, leaks_code
from tl_eval.harness.perturb import ALL_KINDS, CODE_KINDS, MATH_KINDS, Perturbation, perturb, perturb_any, split_steps

# ---------------------------------------------------------------- data helpers (also used by other tests)


def data_dir() -> Path:
    env = os.environ.get("TL_EVAL_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}; set TL_EVAL_DATA_DIR to the shared data folder")
    with path.open() as f:
        return [json.loads(line) for line in f]


_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[+\-−–*/×÷()$%]|[A-Za-z]+|\S")
_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")
_OPS = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "/": "/", "÷": "/", "(": "(", ")": ")"}


def _lhs(piece: str) -> str:
    """The arithmetic just before an "=": numbers and operators, skipping units after a number
    ("10 rooms/floor", "2 hours per game") and reading "50%" as 50/100."""
    toks = _TOKEN.findall(piece)
    kept: list[str] = []
    j = len(toks) - 1
    while j >= 0:
        t = toks[j]
        if _NUM.fullmatch(t):
            kept.append(t.replace(",", ""))
        elif t in _OPS:
            kept.append(_OPS[t])
        elif t == "%":
            kept.append("/ 100")
        elif t == "x" and kept:  # "0.2 x 50", "5 vans x 28 students"
            kept.append("*")
        elif t == "$":
            pass
        elif t.isalpha():
            # A unit run: words joined by "/" or "per", right after a number; skipped.
            i = j
            while i > 0 and (toks[i - 1].isalpha() or (toks[i - 1] == "/" and i > 1 and toks[i - 2].isalpha())):
                i -= 1
            if i > 1 and toks[i - 1] == "/" and _NUM.fullmatch(toks[i - 2]):
                i -= 1  # "$0.05/nickel"
            if i == 0 or not (_NUM.fullmatch(toks[i - 1]) or toks[i - 1] == "%"):
                break
            j = i
        else:
            break
        j -= 1
    return " ".join(reversed(kept)).lstrip("+*/ ")


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left), _eval(node.right)
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b}
        if type(node.op) in ops:
            return ops[type(node.op)]()
    raise ValueError("not arithmetic")


def evaluate(expr: str) -> Fraction:
    """Exact value of a normalized arithmetic expression (from `_lhs`); ValueError if not arithmetic."""
    try:
        return _eval(ast.parse(expr, mode="eval"))
    except (SyntaxError, ZeroDivisionError) as e:
        raise ValueError(str(e)) from e


def equations(text: str) -> list[tuple[str, Fraction]]:
    """Written computations `lhs = rhs` (lhs with an operator, rhs starting with a number) as (lhs, rhs)."""
    out = []
    for line in text.splitlines():
        pieces = line.split("=")
        for left, right in zip(pieces, pieces[1:]):
            lhs, rhs = _lhs(left), re.match(r"\s*\$?(\d[\d,]*(?:\.\d+)?)", right)
            if rhs and re.search(r"[\d)]\s*[-+*/]\s*[$(]?\s*\d", lhs):
                out.append((lhs, Fraction(rhs.group(1).replace(",", ""))))
    return out


def arithmetic_holds(text: str) -> bool:
    for lhs, rhs in equations(text):
        try:
            if evaluate(lhs) != rhs:
                return False
        except ValueError:
            return False
    return True


def clean_rationale(answer: str) -> tuple[str, str]:
    """(trace, gold): the GSM8K rationale without calculator annotations and without the `#### N` line."""
    body, gold = answer.split("####")
    return re.sub(r"<<[^>]*>>", "", body).strip(), gold.strip().replace(",", "")


@lru_cache(maxsize=1)
def gsm8k_traces(limit: int = 400) -> tuple[tuple[str, str, str], ...]:
    """(problem_id, trace, gold) for GSM8K train rationales with several steps and correct written arithmetic."""
    rows = _read_jsonl(data_dir() / "gsm8k" / "train.jsonl")[:limit]
    out = []
    for i, row in enumerate(rows):
        trace, gold = clean_rationale(row["answer"])
        if len(split_steps(trace)) >= 2 and equations(trace) and arithmetic_holds(trace):
            out.append((f"gsm8k/train/{i}", trace, gold))
    return tuple(out)


def assert_localized(original: str, p: Perturbation) -> None:
    a, b = p.span
    assert 0 <= a <= b <= len(original)
    assert p.original == original[a:b]
    assert p.text == original[:a] + p.replacement + original[b:]
    assert p.text != original


PLANS = [
    "1. Sort the list in ascending order.\n2. Iterate i over range(len(nums) - 1).\n"
    "3. If nums[i] > nums[i + 1], return False.\n4. After the loop, return True.",
    "- Count how many characters are vowels.\n- Return the count if it is at least k, else return -1.",
    "First, build a dictionary from each word to its frequency. Then find the word with the maximum "
    "frequency. If two words tie, keep the one that appears first. Return that word.",
    "Step 1: Initialize total = 0.\nStep 2: Loop for i in range(1, n + 1) and add i * i to total.\n"
    "Step 3: Return total.",
    "Split the string on spaces.\nReverse the order of the words.\nJoin them with a single space and return it.",
    "Use two pointers lo = 0 and hi = len(arr) - 1.\nWhile lo < hi, swap arr[lo] and arr[hi].\n"
    "Move lo up and hi down.\nReturn arr.",
]


# ---------------------------------------------------------------- steps


def test_split_steps_lines_and_sentences():
    text = "  First line.\n\nSecond line. Still second.\n"
    assert [text[a:b] for a, b in split_steps(text)] == ["First line.", "Second line. Still second."]
    para = "Weng earns 12/60 = $0.2 per minute. Working 50 minutes, e.g. today, she earned 0.2 x 50 = $10."
    assert [para[a:b] for a, b in split_steps(para)] == [
        "Weng earns 12/60 = $0.2 per minute.",
        "Working 50 minutes, e.g. today, she earned 0.2 x 50 = $10.",
    ]
    assert split_steps("   \n ") == []


# ---------------------------------------------------------------- math kinds on real rationales


def test_gsm8k_fixture_is_real_and_large_enough():
    traces = gsm8k_traces()
    assert len(traces) >= 150, "too few GSM8K rationales with checkable arithmetic"
    assert traces[0][1].startswith("Natalia sold 48/2 = 24 clips in May.")


@pytest.mark.parametrize("kind", MATH_KINDS)
def test_math_kinds_apply_localized_and_seeded(kind):
    traces = gsm8k_traces()
    applied, seed_matters = 0, False
    for i, (_, trace, _) in enumerate(traces):
        p = perturb(trace, kind, random.Random(i))
        if p is None:
            continue
        applied += 1
        assert p.kind == kind
        assert_localized(trace, p)
        assert perturb(trace, kind, random.Random(i)) == p  # same rng seed, same perturbation
        seed_matters |= perturb(trace, kind, random.Random(i + 10_000)) != p
    assert applied >= 0.95 * len(traces)
    assert seed_matters


@pytest.mark.parametrize("kind", ["number_change", "operator_swap"])
def test_math_corruption_breaks_the_written_arithmetic(kind):
    broken = 0
    traces = gsm8k_traces()
    for i, (_, trace, _) in enumerate(traces):
        p = perturb(trace, kind, random.Random(i))
        assert p is not None
        # The trace's own arithmetic held before; after one local change some equation is false.
        broken += not arithmetic_holds(p.text)
    # "x * 1 -> x / 1" or "0 x 5 -> 0 x 6" can keep an equation true; allow a handful of those.
    assert broken >= 0.97 * len(traces), f"{kind}: only {broken}/{len(traces)} traces broken"


def test_number_change_targets_an_operand_and_keeps_format():
    trace = "Weng earns 12/60 = $0.2 per minute.\nShe earned 0.2 x 50 = $10 for 1,250 minutes of 5,000."
    seen = set()
    for s in range(40):
        p = perturb(trace, "number_change", random.Random(s))
        assert p.original in {"12", "60", "0.2", "50"}  # operands only, never a result or a plain mention
        assert re.fullmatch(r"\d+(\.\d)?", p.replacement)
        assert ("." in p.replacement) == ("." in p.original)
        seen.add(p.original)
    assert len(seen) >= 3
    words = "He had 1,250 apples and gave away 3."
    p = perturb(words, "number_change", random.Random(0))  # no arithmetic: falls back to any number
    assert p.original in {"1,250", "3"} and ("," in p.replacement) == ("," in p.original)


def test_operator_swap_covers_symbols_words_and_latex():
    cases = {
        "So 48+24 = 72.": ("+", "-"),
        "Then 3 x 4 = 12.": ("x", "/"),
        "Compute 10 divided by 2 to get 5.": ("divided by", "times"),
        r"We get $3 \times 4 = 12$.": ("\\times", "\\div"),
    }
    for text, (old, new) in cases.items():
        p = perturb(text, "operator_swap", random.Random(0))
        assert (p.original, p.replacement) == (old, new), text
    assert perturb("The box has 120 pages and a 3-ring binder.", "operator_swap", random.Random(0)) is None


def test_step_deletion_removes_exactly_one_step():
    _, trace, _ = gsm8k_traces()[3]
    steps = [trace[a:b] for a, b in split_steps(trace)]
    for s in range(10):
        p = perturb(trace, "step_deletion", random.Random(s))
        left = [p.text[a:b] for a, b in split_steps(p.text)]
        assert len(left) == len(steps) - 1
        assert p.original.strip() in steps and p.original.strip() not in left
        assert "\n\n" not in p.text and not p.text.startswith("\n") and not p.text.endswith("\n")


def test_kinds_report_not_applicable():
    assert perturb("No numbers here at all.", "number_change", random.Random(0)) is None
    assert perturb("One single step.", "step_deletion", random.Random(0)) is None
    assert perturb("One single step.", "step_swap", random.Random(0)) is None
    assert perturb("Just think about it.", "condition_flip", random.Random(0)) is None
    assert perturb("Just think about it.", "off_by_one", random.Random(0)) is None
    assert perturb("Some reasoning.", "answer_leak", random.Random(0)) is None  # needs an answer
    assert perturb_any("Just think about it.", CODE_KINDS, random.Random(0)) is None
    with pytest.raises(ConfigError, match="unknown perturbation kind 'typo'"):
        perturb("x", "typo", random.Random(0))


# ---------------------------------------------------------------- code kinds on plans and real MBPP code


def test_condition_flip_examples():
    def flips(text):
        return {(p.original, p.replacement) for s in range(30) if (p := perturb(text, "condition_flip", random.Random(s)))}

    assert flips("Return True when the count is less than k.") >= {("less than", "greater than"), ("True", "False")}
    assert flips("keep it if a <= b") == {("<=", ">=")}
    assert flips("Sort in Ascending order") == {("Ascending", "Descending")}
    # Tags, arrows and shifts are not comparisons.
    assert flips("<reasoning>call f -> str, then x << 2</reasoning>") == set()


def test_off_by_one_examples():
    def shifts(text):
        return {(p.original, p.replacement) for s in range(40) if (p := perturb(text, "off_by_one", random.Random(s)))}

    assert shifts("for i in range(n): add i") == {("n", "n + 1")}
    assert shifts("for i in range(1, n - 1): add i") == {("n - 1", "n")}
    assert shifts("take nums[0] first") == {("0", "1")}
    assert shifts("take nums[-1]") == {("-1", "-2")}
    assert shifts("loop while i <= n") == {("<=", "<")}
    assert ("len(s) - 1" not in {o for o, _ in shifts("compare with s[len(s) - 1]")}) and (
        (" - 1", "") in shifts("compare with s[len(s) - 1]")
    )


@pytest.mark.parametrize("kind", CODE_KINDS)
def test_code_kinds_on_plans_are_localized_and_seeded(kind):
    applied = 0
    for i, plan in enumerate(PLANS):
        p = perturb(plan, kind, random.Random(i))
        if p is None:
            continue
        applied += 1
        assert_localized(plan, p)
        assert perturb(plan, kind, random.Random(i)) == p
    assert applied >= len(PLANS) - 2, f"{kind} applied to only {applied} of {len(PLANS)} plans"


def test_step_swap_keeps_list_markers_and_swaps_two_adjacent_steps():
    plan = PLANS[0]
    for s in range(10):
        p = perturb(plan, "step_swap", random.Random(s))
        before = [plan[a:b] for a, b in split_steps(plan)]
        after = [p.text[a:b] for a, b in split_steps(p.text)]
        assert [x[:3] for x in after] == ["1. ", "2. ", "3. ", "4. "]
        changed = [j for j in range(4) if before[j] != after[j]]
        assert len(changed) == 2 and changed[1] == changed[0] + 1
        assert sorted(x[3:] for x in after) == sorted(x[3:] for x in before)


def test_code_kinds_on_real_mbpp_programs():
    rows = _read_jsonl(data_dir() / "mbpp" / "mbpp.jsonl")[:120]
    counts = dict.fromkeys(("condition_flip", "off_by_one", "step_swap"), 0)
    for i, row in enumerate(rows):
        code = row["code"].replace("\r\n", "\n")
        for kind in counts:
            p = perturb(code, kind, random.Random(i))
            if p is not None:
                counts[kind] += 1
                assert_localized(code, p)
                assert "\n" not in p.original or kind == "step_swap"
    assert counts["condition_flip"] >= 40 and counts["off_by_one"] >= 40 and counts["step_swap"] >= 100, counts


# ---------------------------------------------------------------- training-data kinds


def test_answer_leak_makes_the_trace_leak():
    pid, trace, gold = gsm8k_traces()[0]
    stem = trace[: split_steps(trace)[-1][0]].strip()  # without the final step, which states the answer
    assert not leaks_answer_math(stem, gold)
    p = perturb(stem, "answer_leak", random.Random(0), answer=gold)
    assert_localized(stem, p)
    assert p.span == (len(stem), len(stem)) and p.original == ""
    assert leaks_answer_math(p.text, gold)
    code = perturb(PLANS[4], "answer_leak", random.Random(0), answer="def rev(s):\n    return ' '.join(s.split()[::-1])")
    assert leaks_code(code.text, "rev") and not leaks_code(PLANS[4], "rev")


def test_irrelevant_step_inserts_one_step():
    for s, plan in enumerate(PLANS):
        p = perturb(plan, "irrelevant_step", random.Random(s))
        assert_localized(plan, p)
        assert p.original == "" and len(split_steps(p.text)) == len(split_steps(plan)) + 1


def test_every_kind_is_dispatched():
    text = PLANS[0] + "\nSo 48+24 = 72."
    for kind in ALL_KINDS:
        p = perturb(text, kind, random.Random(0), answer="72")
        assert p is not None and p.kind == kind
