"""The planner's turn: how it is opened (the format) and how the reasoning trace is read out of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tl_eval.harness.config import SamplingSettings
    from tl_eval.harness.task import Task
    from tl_eval.harness.types import Problem, SamplingParams

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


@dataclass(frozen=True)
class PlannerTurn:
    """The planner's request for one problem: what it is shown (with the prefill) and how it decodes (budget and
    stops). The evaluation and the trainer both build it here, so that a planner is trained on the turn it is
    judged on."""

    messages: tuple[dict, ...]
    sampling: SamplingParams
    fmt: str


def planner_turn(task: Task, problem: Problem, settings: SamplingSettings) -> PlannerTurn:
    return PlannerTurn(tuple(planner_messages(task.planner_messages(problem), settings.planner_format)),
                       settings.planner(tuple(task.planner_stops)), settings.planner_format)


def cut_at_stops(text: str, stops) -> tuple[str, bool]:
    """(text before the first stop sequence, whether one occurred): for backends that return the stop itself."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[:min(found)], True) if found else (text, False)


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
