"""The `masked` condition's rule: remove what a trace leaks, so that uplift measures method, not dictation.

Math: every occurrence of the gold answer (as a number in any of the forms `leakage` recognises, or as the
expression itself) becomes a neutral placeholder. Code: fenced blocks and any definition of the entry point are
removed. Each function returns the masked text and the spans of the original that were removed.
"""

from __future__ import annotations

import re
from fractions import Fraction

from tl_eval.harness.metrics.leakage import _FENCE, _NUM_TOKEN, _as_number, _normalized_latex, _unbox

PLACEHOLDER = "[masked]"
_NOISE = r"(?:\s|\\left|\\right|\\!|\\,|\\;|\$)*"
Span = tuple[int, int]


def _replace(text: str, spans: list[Span], replacement: str) -> str:
    out, last = [], 0
    for a, b in sorted(spans):
        out += [text[last:a], replacement]
        last = b
    return "".join(out) + text[last:]


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _number_spans(trace: str, value: Fraction) -> list[Span]:
    """Spans of number tokens equal to `value` (for "48/2"-style computations, the operand that equals it)."""
    spans = []
    # The same thousands-separator clean-up as `leakage._numbers_in` ("10,\\!080" is one number), keeping a map
    # from the cleaned text back to offsets in the original.
    keep = [i for i in range(len(trace)) if not _in_separator(trace, i)]
    hay = "".join(trace[i] for i in keep)
    keep.append(len(trace))

    def back(span: Span) -> Span:
        return keep[span[0]], keep[span[1] - 1] + 1

    for m in _NUM_TOKEN.finditer(hay):
        if m.group(1) is not None or m.group(3) is not None:
            g = (1, 2) if m.group(1) is not None else (3, 4)
            a, b = int(m.group(g[0])), int(m.group(g[1]))
            if b == 0:
                continue
            if m.group(3) is not None and (b == 1 or Fraction(a, b).denominator != b):
                spans += [back(m.span(i)) for i in g if Fraction(int(m.group(i))) == value]
            elif Fraction(a, b) == value:
                spans.append(back(m.span()))
        else:
            i = 5 if m.group(5) is not None else 6
            if Fraction(m.group(i).replace(",", "")) == value:
                spans.append(back(m.span(i)))
    return spans


_SEPARATOR = re.compile(r"\\[!,;]")


def _in_separator(text: str, i: int) -> bool:
    """Whether text[i] belongs to a LaTeX thin-space command (\\!, \\, or \\;)."""
    return bool(_SEPARATOR.match(text, i) or (i > 0 and _SEPARATOR.match(text, i - 1)))


def _expression_spans(trace: str, gold: str) -> list[Span]:
    needle = re.sub(r"\\[dt]frac", r"\\frac", _normalized_latex(gold))
    pattern = _NOISE.join(map(re.escape, needle)).replace(_NOISE.join(map(re.escape, "\\frac")), r"\\[dt]?frac")
    spans = []
    for m in re.finditer(pattern, trace) if needle else ():
        before = trace[m.start() - 1] if m.start() else ""
        after = trace[m.end()] if m.end() < len(trace) else ""
        if not ((before.isalnum() and needle[0].isalnum()) or (after.isalnum() and needle[-1].isalnum())):
            spans.append(m.span())
    return spans


def mask_math(trace: str, gold: str) -> tuple[str, list[Span]]:
    """The trace with every occurrence of the gold answer replaced by PLACEHOLDER, and the replaced spans."""
    g = _unbox(gold)
    if not g:
        return trace, []
    value = _as_number(g)
    spans = _merge(_number_spans(trace, value) if value is not None else _expression_spans(trace, g))
    masked = _replace(trace, spans, PLACEHOLDER)
    return masked, spans


def _definition_spans(trace: str, entry_point: str) -> list[Span]:
    """`def entry_point(...)` with its indented body, `class entry_point`, `entry_point = lambda ...` lines."""
    ep = re.escape(entry_point)
    spans = []
    for m in re.finditer(rf"\b(?:(?:async\s+)?def\s+{ep}\s*\(|class\s+{ep}\b)", trace):
        line = trace[trace.rfind("\n", 0, m.start()) + 1:]
        indent = len(line.expandtabs()) - len(line.expandtabs().lstrip())
        end = trace.find("\n", m.end())
        end = len(trace) if end < 0 else end + 1
        while end < len(trace):  # the body: following lines indented deeper, or blank
            nl = trace.find("\n", end)
            line = trace[end: len(trace) if nl < 0 else nl + 1]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            end += len(line)
        spans.append((m.start(), end))
    for m in re.finditer(rf"[^\n]*\b{ep}\s*=\s*lambda\b[^\n]*\n?", trace):
        spans.append(m.span())
    return spans


def _fence_spans(trace: str) -> list[Span]:
    spans, marks = [], list(_FENCE.finditer(trace))
    i = 0
    while i < len(marks):
        start = marks[i].start()
        if i + 1 < len(marks):
            close = trace.find("\n", marks[i + 1].end())
            spans.append((start, len(trace) if close < 0 else close + 1))
            i += 2
        else:  # an unclosed fence runs to the end
            spans.append((start, len(trace)))
            i += 1
    return spans


def mask_code(trace: str, entry_point: str | None) -> tuple[str, list[Span]]:
    """The trace without fenced code blocks and definitions of the entry point, and the removed spans."""
    spans = _fence_spans(trace) + (_definition_spans(trace, entry_point) if entry_point else [])
    spans = _merge(spans)
    return _replace(trace, spans, ""), spans
