"""Read traces to score from a tl-eval samples JSONL, tolerant to extra fields and repeated traces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DataError

REQUIRED = ("problem_id", "prompt", "trace", "task_type")


@dataclass(frozen=True)
class SampleTrace:
    problem_id: str
    prompt: str
    trace: str
    task_type: str
    line: int
    condition: str | None = None
    sample_index: int | None = None


def read_samples(path: str | Path) -> list[SampleTrace]:
    """Every line with a trace; lines of conditions other than `full` (when present) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"samples file {path} does not exist", "pass a samples_<task>.jsonl from a run directory")
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})", "each line must be one JSON object") from exc
            missing = [k for k in REQUIRED if k not in raw]
            if missing:
                raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}",
                                f"samples lines need {', '.join(REQUIRED)}")
            if raw["task_type"] not in ("code", "math"):
                raise DataError(f"{path}:{lineno}: task_type {raw['task_type']!r} is not 'code' or 'math'",
                                "fix the task_type field")
            # The trace is the same under every condition; score it once, from the `full` line.
            if raw.get("condition") not in (None, "full") or raw["trace"] is None:
                continue
            out.append(SampleTrace(str(raw["problem_id"]), str(raw["prompt"]), str(raw["trace"]), raw["task_type"],
                                   lineno, raw.get("condition"), raw.get("sample_index")))
    return out
