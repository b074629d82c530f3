"""Localized, labelled perturbations of reasoning texts (math rationales and code plans).

Each perturbation replaces exactly one character span of the original text and records it, so that
faithfulness runs and the training-data builder can say what changed. Everything is driven by the
`random.Random` passed in: the same text, kind and rng state give the same result.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal

from tl_eval.harness.errors import ConfigError

MATH_KINDS = ("number_change", "operator_swap", "step_deletion")
CODE_KINDS = ("condition_flip", "off_by_one", "step_swap", "step_deletion")
ALL_KINDS = (
    "number_change",
    "operator_swap",
    "step_deletion",
    "step_swap",
    "condition_flip",
    "off_by_one",
    "answer_leak",
    "irrelevant_step",
)


@dataclass(frozen=True)
class Perturbation:
    """One replaced span: `text == original_text[:span[0]] + replacement + original_text[span[1]:]`."""

    kind: str
    span: tuple[int, int]  # char span in the ORIGINAL text that was replaced (empty for insertions)
    original: str
    replacement: str
    text: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "span": list(self.span), "original": self.original, "replacement": self.replacement}


# ---------------------------------------------------------------- steps

# A regex rather than nltk/pysbd: traces are short model outputs, and decimals ("0.2 x 50") never carry
# whitespace after the dot, so "sentence end = [.!?] + whitespace + non-lowercase" is enough and adds no
# dependency. The lowercase rule keeps "e.g. the" together.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[^a-z\s])")
_LIST_MARKER = re.compile(r"(?:\d+[.)]|[-*•]|step\s+\d+\s*[:.)]?)\s+", re.IGNORECASE)


def split_steps(text: str) -> list[tuple[int, int]]:
    """Char spans of the steps: non-empty lines (stripped); a single paragraph splits into sentences."""
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]
    lines = [_strip_span(text, a, b) for a, b in lines]
    lines = [(a, b) for a, b in lines if b > a]
    if len(lines) != 1:
        return lines
    a, b = lines[0]
    steps, start = [], a
    for m in _SENTENCE_BREAK.finditer(text, a, b):
        steps.append((start, m.start()))
        start = m.end()
    steps.append((start, b))
    return [s for s in steps if s[1] > s[0]]


def _strip_span(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _content_start(text: str, a: int, b: int) -> int:
    """Start of a step's content after a list marker ("2.", "-", "Step 3:"), so swaps keep the numbering."""
    m = _LIST_MARKER.match(text, a, b)
    return m.end() if m and m.end() < b else a


# ---------------------------------------------------------------- numbers and operators

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NUMBER = re.compile(rf"(?<![\w.,])(?:{_NUM})(?!\w|\.\d|,\d)")
# Binary operators followed by a number (optionally "$"/"("-prefixed). "x" is a multiplication sign only
# as a standalone letter; "–" and "−" are how some rationales write minus.
_OPERATOR = re.compile(
    r"(\\times|\\cdot|\\div|[+\-–−*/×÷]|(?<![A-Za-z])x(?![A-Za-z])|\b(?:plus|minus|times|divided by|multiplied by)\b)"
    rf"(?=\s*[$(]?\s*(?:{_NUM}))"
)
# What precedes an operator: a number or ")" and up to four unit words ("7 starfish * 5", "6 tubs of lip gloss * 2").
_LEFT_OPERAND = re.compile(rf"(?<![\w.,])({_NUM}|\))%?(?:\s+[A-Za-z][A-Za-z/.]*){{0,4}}\s*$")
_RIGHT_OPERAND = re.compile(rf"\s*[$(]?\s*({_NUM})")
_MULTIPLICATIVE = {"*", "/", "x", "×", "÷", "\\times", "\\cdot", "\\div", "times", "divided by", "multiplied by"}
_OPERATOR_SWAP = {
    "+": "-",
    "-": "+",
    "–": "+",
    "−": "+",
    "*": "/",
    "/": "*",
    "x": "/",
    "×": "÷",
    "÷": "×",
    "\\times": "\\div",
    "\\cdot": "\\div",
    "\\div": "\\times",
    "plus": "minus",
    "minus": "plus",
    "times": "divided by",
    "multiplied by": "divided by",
    "divided by": "times",
}


@dataclass(frozen=True)
class _Op:
    span: tuple[int, int]
    symbol: str
    operands: tuple[tuple[int, int], ...]  # char spans of the numbers it combines


def _operators(text: str) -> list[_Op]:
    """Arithmetic operators that combine two quantities written in the text."""
    out = []
    for m in _OPERATOR.finditer(text):
        left = _LEFT_OPERAND.search(text, max(0, m.start() - 60), m.start())
        if left is None:
            continue
        right = _RIGHT_OPERAND.match(text, m.end())
        spans = tuple(g.span(1) for g in (left, right) if g.group(1) != ")")
        out.append(_Op(m.span(1), m.group(1), spans))
    return out


def _operand_numbers(text: str) -> list[tuple[int, int]]:
    """Spans of the numbers that are inputs of a written computation."""
    return sorted({span for op in _operators(text) for span in op.operands})


def _changed_number(token: str, rng: random.Random) -> str:
    """The same number moved by a small nonzero amount, keeping its format (decimals, thousands commas)."""
    value = Decimal(token.replace(",", ""))
    places = -value.as_tuple().exponent if "." in token else 0
    unit = Decimal(1).scaleb(-places)
    delta = rng.choice((-2, -1, 1, 2)) * unit
    new = value + delta if value + delta > 0 else value + abs(delta)
    text = f"{new:,.{places}f}" if "," in token else f"{new:.{places}f}"
    return text


# ---------------------------------------------------------------- code-plan patterns

_FLIP_WORDS = {
    "less than": "greater than",
    "greater than": "less than",
    "fewer than": "more than",
    "more than": "less than",
    "at least": "at most",
    "at most": "at least",
    "smaller": "larger",
    "larger": "smaller",
    "bigger": "smaller",
    "smallest": "largest",
    "largest": "smallest",
    "biggest": "smallest",
    "lower": "higher",
    "higher": "lower",
    "lowest": "highest",
    "highest": "lowest",
    "shortest": "longest",
    "longest": "shortest",
    "minimum": "maximum",
    "maximum": "minimum",
    "min": "max",
    "max": "min",
    "ascending": "descending",
    "descending": "ascending",
    "increasing": "decreasing",
    "decreasing": "increasing",
    "before": "after",
    "after": "before",
    "first": "last",
    "last": "first",
    "even": "odd",
    "odd": "even",
    "true": "false",
    "false": "true",
    "positive": "negative",
    "negative": "positive",
}
_FLIP_WORD_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _FLIP_WORDS), key=len, reverse=True)) + r")\b", re.I)
_FLIP_OPS = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "!=", "!=": "=="}
_COMPARISON = re.compile(r"(?<=[\w)\]'\"])(\s*)(<=|>=|==|!=|<|>)(\s*)(?=[\w(\['\"-])")
_TAG = re.compile(r"</?[A-Za-z_][\w-]*>")

_RANGE_CALL = re.compile(r"\brange\(")
_PLUS_MINUS_ONE = re.compile(r"(?<=[\w)\]])\s*[+-]\s*1(?![\w.])")
_BRACKET_INT = re.compile(r"(?<=[\[:])\s*(-?\d+)\s*(?=[\]:])")
_BOUND_WORD_INT = re.compile(
    r"\b(?:index|position|from|starting at|start at|up to|through|until|first|last)\s+(\d+)\b", re.I
)
# Strict vs non-strict bounds: the same comparison, moved by one.
_STRICT_BOUNDS = {
    "<=": "<",
    "<": "<=",
    ">=": ">",
    ">": ">=",
    "inclusive": "exclusive",
    "exclusive": "inclusive",
    "at least": "more than",
    "more than": "at least",
    "at most": "less than",
    "less than": "at most",
    "fewer than": "at most",
}
_BOUND_OP = re.compile(
    r"(?<=[\w)\]])(\s*)(<=|>=|<|>)(\s*)(?=[\w(\[-])|\b(inclusive|exclusive|at least|more than|at most|less than|fewer than)\b",
    re.I,
)


def _match_case(word: str, replacement: str) -> str:
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    if word[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def _glued_to_operator(text: str, a: int, b: int) -> bool:
    """Part of "->", "<<", "=>", "!==" and the like rather than a comparison of its own."""
    return (a > 0 and text[a - 1] in "<>=!-") or (b < len(text) and text[b] in "<>=")


def _comparison_ops(text: str) -> list[tuple[int, int, str]]:
    """(start, end, op) of comparison operators, skipping arrows, shifts and <tags>."""
    tags = [(m.start(), m.end()) for m in _TAG.finditer(text)]
    out = []
    for m in _COMPARISON.finditer(text):
        a, b = m.start(2), m.end(2)
        if any(ta <= a < tb for ta, tb in tags):
            continue
        if _glued_to_operator(text, a, b):
            continue
        out.append((a, b, m.group(2)))
    return out


def _range_stop_args(text: str) -> list[tuple[int, int]]:
    """Char spans of the stop argument of each `range(...)` call (first arg if one, else the second)."""
    out = []
    for m in _RANGE_CALL.finditer(text):
        depth, args, start = 0, [], m.end()
        for i in range(m.end(), len(text)):
            c = text[i]
            if c in "([{":
                depth += 1
            elif c in ")]}" and depth:
                depth -= 1
            elif c == "," and depth == 0:
                args.append((start, i))
                start = i + 1
            elif c == ")":
                args.append((start, i))
                break
            elif c == "\n":
                args = []
                break
        else:
            args = []
        if args:
            a, b = _strip_span(text, *(args[0] if len(args) == 1 else args[1]))
            if b > a:
                out.append((a, b))
    return out


# ---------------------------------------------------------------- kinds

_IRRELEVANT_STEPS = (
    "Note that the problem statement uses a consistent naming convention.",
    "It is worth remembering that careful reading helps avoid mistakes.",
    "This kind of question appears often in practice exercises.",
    "Some people prefer to write the steps down on paper first.",
    "The order in which the inputs are described does not change the setting.",
    "A quick double-check of the wording is always a good habit.",
)


def _replace(text: str, kind: str, a: int, b: int, replacement: str) -> Perturbation:
    return Perturbation(kind, (a, b), text[a:b], replacement, text[:a] + replacement + text[b:])


def _before_result(text: str, positions: list[int]) -> list[bool]:
    """For each position: is an "=" written after it within the same step (the computation's result)?"""
    steps = split_steps(text)
    out = []
    for pos in positions:
        end = next((b for a, b in steps if a <= pos <= b), len(text))
        out.append("=" in text[pos:end])
    return out


def _number_change(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    # Best: an input of a computation whose result is written after it in the same step ("48/2 = 24" ->
    # "47/2 = 24"), so the written arithmetic turns false. Then any operand, then any number stated.
    operands = _operand_numbers(text)
    stated = [sp for sp, ok in zip(operands, _before_result(text, [b for _, b in operands])) if ok]
    candidates = stated or operands or [m.span() for m in _NUMBER.finditer(text)]
    if not candidates:
        return None
    a, b = rng.choice(candidates)
    return _replace(text, "number_change", a, b, _changed_number(text[a:b], rng))


def _operator_swap(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    ops = _operators(text)
    if not ops:
        return None
    # Prefer swaps that change a written result: skip "x 1" and "/ 1", whose swap keeps the value.
    stated = [op for op, ok in zip(ops, _before_result(text, [op.span[1] for op in ops])) if ok]
    useful = [op for op in stated if not (op.symbol in _MULTIPLICATIVE and text[slice(*op.operands[-1])] == "1")]
    op = rng.choice(useful or stated or ops)
    return _replace(text, "operator_swap", *op.span, _OPERATOR_SWAP[op.symbol])


def _step_deletion(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    steps = split_steps(text)
    if len(steps) < 2:
        return None
    i = rng.randrange(len(steps))
    # Remove the step with the separator after it (before it, for the last step) so no blank gap remains.
    a, b = steps[i]
    if i + 1 < len(steps):
        b = steps[i + 1][0]
    else:
        a = steps[i - 1][1]
    return _replace(text, "step_deletion", a, b, "")


def _step_swap(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    steps = split_steps(text)
    pairs = []
    for (a1, b1), (a2, b2) in zip(steps, steps[1:]):
        c1, c2 = _content_start(text, a1, b1), _content_start(text, a2, b2)
        if text[c1:b1] != text[c2:b2]:
            pairs.append((c1, b1, c2, b2))
    if not pairs:
        return None
    c1, b1, c2, b2 = rng.choice(pairs)
    # List markers ("1.", "2.") stay where they are; only the contents trade places.
    middle = text[b1:c2]
    return _replace(text, "step_swap", c1, b2, text[c2:b2] + middle + text[c1:b1])


def _condition_flip(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    cands = [(a, b, _FLIP_OPS[op]) for a, b, op in _comparison_ops(text)]
    for m in _FLIP_WORD_RE.finditer(text):
        word = m.group(1)
        cands.append((m.start(), m.end(), _match_case(word, _FLIP_WORDS[word.lower()])))
    if not cands:
        return None
    a, b, rep = rng.choice(cands)
    return _replace(text, "condition_flip", a, b, rep)


def _off_by_one(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    cands: list[tuple[int, int, str]] = []
    for a, b in _range_stop_args(text):
        arg = text[a:b]
        shifted = _PLUS_MINUS_ONE.search(arg)
        if shifted and shifted.end() == len(arg):
            cands.append((a, b, arg[: shifted.start()]))
        else:
            cands.append((a, b, f"{arg} + 1"))
    for m in _PLUS_MINUS_ONE.finditer(text):
        if not any(a <= m.start() < b for a, b, _ in cands):
            cands.append((m.start(), m.end(), ""))
    for m in _BRACKET_INT.finditer(text):
        v = int(m.group(1))
        cands.append((m.start(1), m.end(1), str(v - 1 if v < 0 else v + 1)))
    for m in _BOUND_WORD_INT.finditer(text):
        v = int(m.group(1))
        cands.append((m.start(1), m.end(1), str(v + 1 if v == 0 else v + rng.choice((-1, 1)))))
    tags = [(t.start(), t.end()) for t in _TAG.finditer(text)]
    for m in _BOUND_OP.finditer(text):
        g = 2 if m.group(2) else 4
        a, b = m.start(g), m.end(g)
        if any(ta <= a < tb for ta, tb in tags) or _glued_to_operator(text, a, b):
            continue
        cands.append((a, b, _match_case(m.group(g), _STRICT_BOUNDS[m.group(g).lower()])))
    if not cands:
        return None
    a, b, rep = rng.choice(cands)
    return _replace(text, "off_by_one", a, b, rep)


def _separator(text: str) -> str:
    return "\n" if "\n" in text.strip() else " "


def _answer_leak(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    if answer is None or not answer.strip():
        return None
    answer = answer.strip()
    if "\n" in answer or answer.startswith(("def ", "class ", "import ", "from ")):
        leak = f"The final code is:\n```python\n{answer}\n```"
        sep = "\n"
    else:
        leak = f"So the final answer is {answer}."
        sep = _separator(text)
    end = _strip_span(text, 0, len(text))[1]
    return _replace(text, "answer_leak", end, end, (sep if end else "") + leak)


def _irrelevant_step(text: str, rng: random.Random, answer: str | None) -> Perturbation | None:
    steps = split_steps(text)
    if not steps:
        return None
    sentence = rng.choice(_IRRELEVANT_STEPS)
    sep = _separator(text)
    # Insert after a random step (never before the first: an opening distraction reads as a preamble).
    end = steps[rng.randrange(len(steps))][1]
    return _replace(text, "irrelevant_step", end, end, sep + sentence)


_KINDS = {
    "number_change": _number_change,
    "operator_swap": _operator_swap,
    "step_deletion": _step_deletion,
    "step_swap": _step_swap,
    "condition_flip": _condition_flip,
    "off_by_one": _off_by_one,
    "answer_leak": _answer_leak,
    "irrelevant_step": _irrelevant_step,
}
assert tuple(_KINDS) == ALL_KINDS


def perturb(text: str, kind: str, rng: random.Random, *, answer: str | None = None) -> Perturbation | None:
    """Apply one perturbation of `kind`; None when it does not apply. `answer_leak` needs `answer`."""
    if kind not in _KINDS:
        raise ConfigError(f"unknown perturbation kind {kind!r}", f"use one of: {', '.join(ALL_KINDS)}")
    return _KINDS[kind](text, rng, answer)


def perturb_any(
    text: str, kinds: tuple[str, ...] | list[str], rng: random.Random, *, answer: str | None = None
) -> Perturbation | None:
    """Try `kinds` in a seeded random order and return the first that applies; None if none does."""
    order = list(kinds)
    rng.shuffle(order)
    for kind in order:
        p = perturb(text, kind, rng, answer=answer)
        if p is not None:
            return p
    return None
