"""The planner's turn: how it is opened (the format) and how the reasoning trace is read out of it."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAGGED = re.compile(r"<reasoning>(.*?)(?:</reasoning>|\Z)", re.DOTALL | re.IGNORECASE)
OPEN, CLOSE = "<reasoning>", "</reasoning>"
PREFILL = OPEN + "\n"  # `tagged` format: the planner's turn starts inside the tag


@dataclass(frozen=True)
class Trace:
    text: str
    tagged: bool  # the trace was inside a <reasoning> tag (always, in the tagged format)
    closed: bool  # ... and the tag was closed within the token budget
    compliant: bool  # closed, with non-blank content: the planner kept to the format


def extract_trace(completion: str) -> Trace:
    """Text inside the first `<reasoning>` tags (an unclosed tag runs to the end), else the whole completion."""
    match = _TAGGED.search(completion)
    if match is None:
        text = completion.strip()
        return Trace(text, tagged=False, closed=False, compliant=False)
    closed = CLOSE in completion[match.start():].lower()
    text = match.group(1).strip()
    return Trace(text, tagged=True, closed=closed, compliant=closed and bool(text))


def planner_messages(messages: list[dict], fmt: str) -> list[dict]:
    """The planner's request: in the tagged format its turn is opened with <reasoning> (an assistant prefill)."""
    return list(messages) + ([{"role": "assistant", "content": PREFILL}] if fmt == "tagged" else [])


def read_turn(text: str, finish_reason: str, fmt: str) -> tuple[str, Trace]:
    """(the planner's whole turn as written, its trace). In the tagged format `text` is the continuation of the
    prefill, cut at </reasoning> by the stop sequence: all of it is the trace, closed unless the token budget ran
    out first."""
    if fmt != "tagged":
        return text, extract_trace(text)
    body = re.split(re.escape(CLOSE), text, maxsplit=1, flags=re.IGNORECASE)[0]  # backends without stop support
    closed = finish_reason != "length"
    trace = Trace(body.strip(), tagged=True, closed=closed, compliant=closed and bool(body.strip()))
    return PREFILL + body + (CLOSE if closed else ""), trace
