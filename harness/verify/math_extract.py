"""Final-answer extraction for math outputs (named pipelines) and exact numeric normalisation."""

from __future__ import annotations

import re
from fractions import Fraction

from harness.errors import ConfigError, DataError

PIPELINES = ("strict", "flexible")

# --- strict markers -------------------------------------------------------------------------------------

_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
# "The answer is X", "the final answer is X", "Final Answer: X", "**Final Answer:** X", "answer is: X".
_ANSWER_PHRASE = re.compile(
    r"(?:\bthe\s+(?:final\s+|correct\s+)?answer|\bfinal\s+answer)\s*\**\s*(?:is\b\s*:?|:)\s*\**\s*([^\n]*)",
    re.IGNORECASE,
)
# A sentence ends at a period, `!` or `?` followed by whitespace or the end (a decimal point is not one).
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_MATH_SPANS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))

# --- numbers --------------------------------------------------------------------------------------------

_MINUS = "\u2212"
# One number token of the `flexible` pipeline: optional sign (only where it cannot be a binary minus),
# optional dollar sign, digits with thousands separators, decimals, or a simple fraction a/b or \frac{a}{b}.
_NUMBER_TOKEN = re.compile(
    r"""
    (?:(?<![\w)\]}])(?P<sign>[-\u2212]))?
    \\?\$?\s?
    (?:
        \\[dt]?frac(?:\{\s*(?P<fnum>-?\d+)\s*\}\{\s*(?P<fden>\d+)\s*\}|(?P<fnum1>\d)(?P<fden1>\d))
      | (?P<num>\d{1,3}(?:,\d{3})+(?!\d)(?!,\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?:/(?P<den>\d+(?!\.\d)))?
    )
    """,
    re.VERBOSE,
)
_PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_FRACTION_FORMS = (
    re.compile(r"(?P<sign>-?)\\[dt]?frac\{(?P<a>-?[\d.]+)\}\{(?P<b>-?[\d.]+)\}"),
    re.compile(r"(?P<sign>-?)\\[dt]?frac(?P<a>\d)(?P<b>\d)"),  # \frac12, as LaTeX allows
    re.compile(r"(?P<sign>-?)(?P<a>[\d.]+)/(?P<b>[\d.]+)"),
)
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mbox|mathrm)\s*\{([^{}]*)\}")
# Unit words after a number ("18 dollars", "5 cm"): letters only, two or more, separated by whitespace,
# so that algebra such as "5x" or "5 x" is never read as a number.
_UNIT_TAIL = re.compile(r"(.*?\d)(?:\s+[A-Za-z]{2,}\.?)+")
_MAX_NUMBER_CHARS = 400  # Fraction of a longer literal is fine, but nothing real is that long


def check_pipeline(pipeline: str) -> str:
    if pipeline not in PIPELINES:
        raise ConfigError(
            f"unknown math extraction pipeline {pipeline!r}",
            f"use one of: {', '.join(PIPELINES)}",
        )
    return pipeline


def extract_answer(text: str, pipeline: str) -> str | None:
    """The final answer in `text` under the named pipeline, or None when it finds none."""
    check_pipeline(pipeline)
    if text is None:
        return None
    return extract_strict(text) if pipeline == "strict" else extract_flexible(text)


def extract_strict(text: str) -> str | None:
    """`#### N` (last), else the last `\\boxed{...}`, else the last "the answer is X" / "final answer: X"."""
    for match in reversed(list(_HASHES.finditer(text))):
        answer = _clean(match.group(1))
        if answer:
            return answer
    boxed = last_boxed(text)
    if boxed:
        return boxed
    for match in reversed(list(_ANSWER_PHRASE.finditer(text))):
        rest = match.group(1)
        # "Final Answer: The final answer is 5." nests one phrase in another: the inner one holds the answer.
        while inner := list(_ANSWER_PHRASE.finditer(rest)):
            rest = inner[-1].group(1)
        answer = _phrase_answer(rest)
        if answer:
            return answer
    return None


def extract_flexible(text: str) -> str | None:
    """The last number in the text, normalised: no thousands separators, no `$`, `%` dropped, e.g. `-3/4`."""
    last = None
    for last in _NUMBER_TOKEN.finditer(text):
        pass
    if last is None:
        return None
    sign = "-" if last.group("sign") else ""
    if last.group("fnum") is not None or last.group("fnum1") is not None:
        num = last.group("fnum") or last.group("fnum1")
        den = last.group("fden") or last.group("fden1")
        if num.startswith("-"):
            sign, num = ("" if sign else "-"), num[1:]
        return f"{sign}{num}/{den}"
    number = last.group("num").replace(",", "")
    if last.group("den") is not None:
        number += "/" + last.group("den")
    return sign + number


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{...}` (or `\\fbox`), braces balanced; `\\boxed 5` also counts."""
    for match in reversed(list(_BOXED.finditer(text))):
        content = _group_after(text, match.end())
        if content is not None and content.strip():
            return content.strip()
    return None


def gold_from_gsm8k(answer_field: str) -> str:
    """The number after the last `####` of a GSM8K answer, without thousands separators."""
    if not answer_field or "####" not in answer_field:
        raise DataError(
            f"GSM8K answer has no '####' line: {str(answer_field)[:80]!r}",
            "pass the dataset's `answer` field unchanged (it ends with '#### N')",
        )
    gold = answer_field.rsplit("####", 1)[1].strip()
    if not gold:
        raise DataError("GSM8K answer has nothing after '####'", "check the data file")
    return gold.replace(",", "")


def gold_from_math_solution(solution: str) -> str | None:
    """The last `\\boxed{}` content of a MATH solution, or None if it has none."""
    return last_boxed(solution or "")


def to_fraction(answer: str | None) -> Fraction | None:
    """The answer as an exact number if it is one (units-free after normalisation), else None.

    Accepts thousands separators (`1,000`, `10,\\!000`), `$`, `%`, degrees, a trailing period, unit
    words ("18 dollars"), decimals, `a/b` and `\\frac{a}{b}`. No exponents, so no literal can be huge.
    """
    if answer is None:
        return None
    s = _normalise_number_text(answer)
    if not s or len(s) > _MAX_NUMBER_CHARS:
        return None
    if _PLAIN_NUMBER.fullmatch(s):
        return Fraction(s.replace(",", ""))
    for form in _FRACTION_FORMS:
        m = form.fullmatch(s)
        if m:
            a, b = _fraction_part(m.group("a")), _fraction_part(m.group("b"))
            if a is None or b is None or b == 0:
                return None
            value = a / b
            return -value if m.group("sign") else value
    return None


# --- helpers --------------------------------------------------------------------------------------------


def _group_after(text: str, pos: int) -> str | None:
    """The brace group starting at `pos` (after optional spaces), or the bare token `\\boxed 5` takes."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] != "{":
        token = re.match(r"[^\s$]+", text[pos:])
        return token.group(0) if token else None
    depth, i = 0, pos
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped brace (\{ \}) is a literal, not a group delimiter
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i]
        i += 1
    return None  # unbalanced: the output was cut off inside the box


def _phrase_answer(rest: str) -> str | None:
    """The answer part of the text after "the answer is": a math span, a box, or up to the sentence end."""
    rest = rest.strip().strip("*").strip()
    boxed = last_boxed(rest)
    if boxed:
        return boxed
    for opener, closer in _MATH_SPANS:
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if end > len(opener):
                return _clean(rest[len(opener) : end])
    end = _SENTENCE_END.search(rest)
    return _clean(rest[: end.start()] if end else rest)


def _clean(answer: str) -> str | None:
    answer = answer.strip().strip("*").strip()
    # A lone math span around the whole answer ("$18$") carries no meaning.
    for opener, closer in _MATH_SPANS:
        if answer.startswith(opener) and answer.endswith(closer) and len(answer) > len(opener) + len(closer):
            answer = answer[len(opener) : -len(closer)].strip()
            break
    answer = answer.rstrip(" .,;:!")
    return answer or None


def _normalise_number_text(answer: str) -> str:
    s = answer.strip().replace(_MINUS, "-")
    s = _TEXT_WRAPPER.sub(r" \1 ", s)
    for noise in ("\\!", "\\,", "\\;", "\\ ", "{,}", "\\left", "\\right", "\\$", "$", "\\%", "%", "°"):
        s = s.replace(noise, "," if noise == "{,}" else "")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = s.strip().rstrip(".").strip()
    if s.startswith("(") and s.endswith(")") and "," not in s:
        s = s[1:-1].strip()  # "(5)" is 5; "(1,2)" stays a tuple
    unit = _UNIT_TAIL.fullmatch(s)
    if unit:
        s = unit.group(1)
    # Spaces only go where they cannot join two numbers into one ("5 6" must not become 56).
    s = re.sub(r"\s*([/{}])\s*", r"\1", s)
    s = re.sub(r"^([-+])\s+", r"\1", s)
    s = re.sub(r"frac\s+\{", "frac{", s)
    if s.startswith("+"):
        s = s[1:]
    return s


def _fraction_part(part: str) -> Fraction | None:
    return Fraction(part) if re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)", part) else None
