"""Final-answer extraction for math outputs (named pipelines) and exact numeric normalisation."""

from __future__ import annotations

import re
from fractions import Fraction

from tl_eval.harness.errors import ConfigError, DataError

PIPELINES = ("strict", "flexible")

# --- strict markers -------------------------------------------------------------------------------------

_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
# "The answer is X", "the final answer is X", "Final Answer: X", "**Final Answer:** X", "answer is: X", "Answer: X".
_ANSWER_PHRASE = re.compile(
    r"\b(?:the\s+)?(?:final\s+|correct\s+)?answer\s*\**\s*(?:is\b\s*:?|:)\s*\**\s*([^\n]*)",
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
# Words after a number that change its value: "2 hundred" is not 2, "5 squared" is not 5.
_SCALING_WORDS = frozenset(
    "hundred hundreds thousand thousands million millions billion billions trillion trillions dozen dozens "
    "squared cubed".split()
)
# Words after a number that make it a bound, a hedge or a calculation, never a unit: "3 or more".
_NOT_UNIT_WORDS = _SCALING_WORDS | frozenset(
    "or and more less fewer than least most not plus minus over under above below approximately about".split()
)

# --- the expression an answer phrase starts with ----------------------------------------------------------

_LEAD_IN = re.compile(
    r"\s*(?:(?:approximately|about|exactly|therefore|thus|hence|so|then|just|simply|that|equal\s+to|equals)\b[\s,:]*)+",
    re.IGNORECASE,
)
_MATH_WORDS = frozenset(
    "pi sqrt cbrt infinity infty inf ln log exp sin cos tan cot sec csc arcsin arccos arctan".split()
)
_MATH_CHARS = set("+-*/^_=<>.,;:!|'%$\u2212\u00b7\u00d7\u00f7\u00b0\u221a\u03c0")
_LIST_ITEM = re.compile(r"\s+(?:[A-Za-z]\s*=\s*)?[-\u2212]?\\?\$?\d")  # "or 6", "and x = 3"
# Words that make a number a bound or a hedge: "3 or more", "at least 3", "more than 5".
_QUALIFIER = re.compile(
    r"\s*(?:or\s+(?:more|less|fewer|greater|so|higher|lower|larger|smaller|above|below)|(?:at|the)\s+(?:least|most)"
    r"|(?:more|less|fewer|greater|other)\s+than|over|under|nearly|almost|roughly|around|up\s+to|not|no)\b",
    re.IGNORECASE,
)
_PROSE_AFTER = re.compile(r"\s+[^\W\d_]{2,}\b")  # "I think", "a lot": a lone letter before a word is prose


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
    """`#### N` (last), else the last `\\boxed{...}`, else the last "the answer is X" / "final answer: X".

    After a marker or an answer phrase the answer is what follows it: a math span, or the number or
    expression it starts with ("The answer is 3 apples, and 7 oranges were left." gives `3`), not a later
    number of the sentence.
    """
    for match in reversed(list(_HASHES.finditer(text))):
        answer = _phrase_answer(match.group(1))
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
    end = _brace_end(text, pos)
    return None if end is None else text[pos + 1 : end]  # None: unbalanced, the output was cut off in the box


def _phrase_answer(rest: str) -> str | None:
    """The answer part of the text after "the answer is": a math span, a box, or up to the sentence end."""
    rest = rest.strip().strip("*").strip()
    boxed = last_boxed(rest)
    if boxed:
        return boxed
    for opener, closer in _MATH_SPANS:
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if opener == "$" and re.match(r"\d", rest[end + 1 : end + 2]):
                break  # "$18 and $7 left": dollar amounts, not a math span
            if end > len(opener):
                return _joined_spans(rest, opener, closer, end)
    end = _SENTENCE_END.search(rest)
    sentence = _clean(rest[: end.start()] if end else rest)
    if sentence is None or to_fraction(sentence) is not None:
        return sentence  # one quantity, units allowed: "1,000 dollars"
    return _clean(_leading_expression(sentence)) or sentence


def _joined_spans(rest: str, opener: str, closer: str, end: int) -> str | None:
    """The first math span of `rest`, with the spans that "or" / "and" / a comma join to it.

    "$x = 2$ or $x = 3$" is a hedge, not the answer `x = 2`: it comes back as `x = 2 \\text{ or } x = 3`,
    which equals neither value alone; "$2$ and $3$" becomes `2 \\text{ and } 3`.
    """
    parts = [rest[len(opener) : end]]
    pos = end + len(closer)
    joiners = re.compile(r"\s*(,\s*(?:or|and)\b|,|or\b|and\b)\s*" + re.escape(opener))
    while True:
        joiner = joiners.match(rest, pos)
        if not joiner:
            break
        start = joiner.end()
        close = rest.find(closer, start)
        if close <= start:
            break
        word = joiner.group(1).strip(", ")
        parts.append(f" \\text{{ {word} }} " if word else ", ")
        parts.append(rest[start:close])
        pos = close + len(closer)
    if len(parts) == 1:
        return _clean(parts[0])
    return _clean("".join(p if i % 2 else p.strip() for i, p in enumerate(parts)))


def _leading_expression(text: str) -> str:
    """The number or expression `text` starts with, up to the first plain word that is not math.

    "3 apples, and 7 oranges were left" gives "3"; "x = 5 because ..." gives "x = 5"; "12 (twelve)" gives
    "12"; a list stays whole: "19, 46, and 82". Single letters are variables, LaTeX commands and brace
    groups are kept whole, and a few lead-in words ("approximately", "therefore") are skipped.
    Returns "" when the text does not start with math (e.g. "Evelyn"): the caller then keeps it all.
    """
    if _QUALIFIER.match(text):
        return text.strip()  # "at least 3": not the number alone
    lead = _LEAD_IN.match(text)
    start = lead.end() if lead else 0
    i, n = start, len(text)
    openers: list[int] = []  # positions of unclosed ( and [
    joiner: int | None = None  # where an "and N" began: a list's last item, or a new clause if words follow
    while i < n:
        ch = text[i]
        if ch == "\\":
            command = re.match(r"\\(?:[A-Za-z]+|.)", text[i:])
            i += len(command.group(0))
            continue
        if ch == "{":
            end = _brace_end(text, i)
            if end is None:
                break
            i = end + 1
            continue
        if ch.isalpha():
            word = re.match(r"[^\W\d_]+", text[i:]).group(0)
            lower = word.lower()
            if len(word) == 1 and re.match(r"\.[^\W\d_]", text[i + 1 : i + 3]):
                break  # "i.e.", "e.g.": prose
            if _QUALIFIER.match(text, i):
                return text.strip()  # "3 or more", "5 at most": not the number alone
            if lower in _MATH_WORDS or (len(word) == 1 and not _PROSE_AFTER.match(text, i + 1)):
                i += len(word)
                continue
            if lower in _SCALING_WORDS:
                i += len(word)  # "2 hundred" stays whole: it is not 2
                break
            if lower in ("and", "or") and _LIST_ITEM.match(text, i + len(word)):
                comma = re.search(r",\s*$", text[start:i])
                if joiner is None and lower == "and":
                    joiner = start + comma.start() if comma else i
                i += len(word)
                continue
            if joiner is not None:
                i = joiner  # "3, and 7 oranges were left": words follow, so "and" began a new clause
            break  # "3 or 4 apples" stays "3 or 4": a hedge
        if ch in "([":
            openers.append(i)
        elif ch in ")]":
            if not openers:
                break
            openers.pop()
        elif not (ch.isdigit() or ch.isspace() or ch in _MATH_CHARS):
            break
        i += 1
    if openers and openers[0] < i:
        i = openers[0]  # "12 (twelve)": drop the bracket a word interrupted
    return text[start:i].strip().rstrip(",;:=").strip()


def _brace_end(text: str, pos: int) -> int | None:
    """Index of the brace closing the one at `pos`, or None when it is never closed."""
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
                return i
        i += 1
    return None


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
        if _NOT_UNIT_WORDS & set(s[unit.end(1) :].lower().replace(".", " ").split()):
            return ""  # "2 hundred", "3 or more": not the number alone
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
