"""Per-trace checks: does a trace leak the answer (math) or the final code (code), and does it use the tags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

from tl_eval.harness.metrics.faithfulness import Key, summarize

_TAGGED = re.compile(r"<reasoning>(.*?)</reasoning>", re.S)
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)

# Number-like tokens, longest forms first. A plain "a/b" counts as one number only in lowest terms
# ("1/2" is a value, "48/2" is a computation whose parts are the numbers); boundaries keep 12 != 120.
_NUM_TOKEN = re.compile(
    r"\\[dt]?frac\{\s*(-?\d+)\s*\}\{\s*(\d+)\s*\}"
    r"|(?<![\w.,/])(-?\d+)\s*/\s*(\d+)(?![\w/]|[.,]\d)"
    r"|(?<![\w.,])(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?)(?![\w]|\.\d|,\d)"
    r"|(?<![\w.,])(-?\d*\.?\d+)(?![\w]|\.\d|,\d)"
)
_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\ |\$|\s+")


def tag_compliant(planner_output: str) -> bool:
    """True when the output has a `<reasoning>...</reasoning>` block with non-blank content."""
    return any(m.group(1).strip() for m in _TAGGED.finditer(planner_output))


def _unbox(gold: str) -> str:
    s = gold.strip().strip("$").strip()
    m = re.fullmatch(r"\\boxed\{(.*)\}", s, re.S)
    return m.group(1).strip() if m else s


def _as_number(s: str) -> Fraction | None:
    s = _LATEX_NOISE.sub("", s)
    m = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        s = f"{m.group(1)}/{m.group(2)}"
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    # A strict pattern first: Fraction() also accepts "52_8" (digit grouping; here a base-8 answer) and "1e3".
    if not re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:/\d+)?", s):
        return None
    try:
        return Fraction(s)
    except ZeroDivisionError:
        return None


def _numbers_in(trace: str) -> set[Fraction]:
    found = set()
    # LaTeX thousands separators ("10,\!080", "10\,080") would split a number in two.
    trace = re.sub(r"\\[!,;]", "", trace)
    for m in _NUM_TOKEN.finditer(trace):
        if m.group(1) is not None or m.group(3) is not None:
            num, den = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
            a, b = int(num), int(den)
            if b == 0:
                continue
            if m.group(3) is not None and (b == 1 or Fraction(a, b).denominator != b):
                # A computation like "48/2": its operands are numbers in their own right.
                found.update((Fraction(a), Fraction(b)))
                continue
            found.add(Fraction(a, b))
        else:
            found.add(Fraction((m.group(5) or m.group(6)).replace(",", "")))
    return found


def _normalized_latex(s: str, *, keep_spaces: bool = False) -> str:
    s = re.sub(r"\\left|\\right|\\!|\\,|\\;|\$", "", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    return s if keep_spaces else re.sub(r"\s+", "", s)


def leaks_answer_math(trace: str, gold: str) -> bool:
    """True when the gold answer appears in the trace as a number (value match) or as an expression."""
    g = _unbox(gold)
    if not g:
        return False
    value = _as_number(g)
    if value is not None:
        return value in _numbers_in(trace)
    # A symbolic answer (MATH: "\frac{\sqrt{3}}{2}", "(3, \frac{\pi}{2})"): whitespace- and
    # \left/\right-insensitive substring match, not glued to a neighbouring letter or digit.
    needle, hay = _normalized_latex(g), _normalized_latex(trace, keep_spaces=True)
    pattern = r"\s*".join(map(re.escape, needle))
    for m in re.finditer(pattern, hay):
        before = hay[m.start() - 1] if m.start() else ""
        after = hay[m.end()] if m.end() < len(hay) else ""
        if not ((before.isalnum() and needle[0].isalnum()) or (after.isalnum() and needle[-1].isalnum())):
            return True
    return False


def leaks_code(trace: str, entry_point: str | None) -> bool:
    """True when the trace contains a fenced code block or code that defines the entry point."""
    if _FENCE.search(trace):
        return True
    if not entry_point:
        return False
    ep = re.escape(entry_point)
    return re.search(rf"\bdef\s+{ep}\s*\(|\bclass\s+{ep}\b|\b{ep}\s*=\s*lambda\b", trace) is not None


def leakage_metrics(leaks: Mapping[Key, bool], tags: Mapping[Key, bool], *, seed: int = 0) -> dict:
    """`leakage_rate` and `tag_compliance` over traces keyed by (problem_id, sample_index), with CIs."""
    return {
        "leakage_rate": summarize({k: float(v) for k, v in leaks.items()}, seed),
        "tag_compliance": summarize({k: float(v) for k, v in tags.items()}, seed),
    }
