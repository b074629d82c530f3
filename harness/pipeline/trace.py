"""Pull the reasoning trace out of a planner's completion."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAGGED = re.compile(r"<reasoning>(.*?)(?:</reasoning>|\Z)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Trace:
    text: str
    tagged: bool  # the completion opened a <reasoning> tag
    closed: bool  # ... and closed it


def extract_trace(completion: str) -> Trace:
    """Text inside the first `<reasoning>` tags (an unclosed tag runs to the end), else the whole completion."""
    match = _TAGGED.search(completion)
    if match is None:
        return Trace(completion.strip(), tagged=False, closed=False)
    closed = "</reasoning>" in completion[match.start():].lower()
    return Trace(match.group(1).strip(), tagged=True, closed=closed)
