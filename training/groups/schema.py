"""TraceLift-Groups rows: rubric dimensions, typed records, and a validating JSONL reader/writer."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tl_eval.harness.errors import DataError

RUBRIC_DIMS: dict[str, tuple[str, ...]] = {
    "code": ("task_understanding", "plan_quality", "step_coherence", "action_support", "non_leakage"),
    "math": ("problem_understanding", "solution_strategy", "step_coherence", "calculation_correctness",
             "answer_support"),
}
MAX_LABEL = 4


def rubric_total(labels: dict[str, int], task_type: str) -> float:
    """The normalized total: the mean of the five labels divided by 4, in [0, 1]."""
    dims = RUBRIC_DIMS[task_type]
    return round(sum(labels[d] for d in dims) / (MAX_LABEL * len(dims)), 4)


@dataclass
class Trace:
    """One reasoning trace with its rubric labels (dim -> 0..4, plus "total" in [0, 1])."""

    reasoning: str
    rubric: dict[str, float]
    negative_kind: str | None = None  # None for positives
    edit: dict[str, Any] | None = None  # where a perturbation changed the reference: span, original, replacement


@dataclass
class GroupRow:
    """A seed problem with its positive traces and its bank of labelled negatives."""

    problem_id: str
    source: str
    task_type: str
    problem: str
    reference_solution: str
    positive_pool: list[Trace]
    negative_bank: list[Trace]
    extra: dict[str, Any] = field(default_factory=dict)  # unknown fields of published rows, kept on rewrite

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("positive_pool", "negative_bank", "extra")}
        out["positive_pool"] = [{"reasoning": t.reasoning, "rubric": t.rubric} for t in self.positive_pool]
        out["negative_bank"] = [{"reasoning": t.reasoning, "negative_kind": t.negative_kind, "rubric": t.rubric,
                                 **({"edit": t.edit} if t.edit else {})} for t in self.negative_bank]
        return {**self.extra, **out}


class _RowError(ValueError):
    pass


def _task_type(raw: dict) -> str:
    tt = raw.get("task_type")
    if tt in RUBRIC_DIMS:
        return tt
    # The published rows may spell the type differently; the rubric's keys decide.
    pool = (raw.get("positive_pool") or []) + (raw.get("negative_bank") or [])
    keys = set((pool[0].get("rubric") or {}) if pool and isinstance(pool[0], dict) else {})
    for name, dims in RUBRIC_DIMS.items():
        if set(dims) <= keys:
            return name
    raise _RowError(f"task_type is {tt!r}; expected 'code' or 'math'")


def _rubric(raw: Any, task_type: str, where: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise _RowError(f"{where}.rubric must be an object of the {task_type} dims, got {type(raw).__name__}")
    labels: dict[str, float] = {}
    for dim in RUBRIC_DIMS[task_type]:
        if dim not in raw:
            raise _RowError(f"{where}.rubric lacks {dim!r} (a {task_type} rubric needs {', '.join(RUBRIC_DIMS[task_type])})")
        v = raw[dim]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or not 0 <= v <= MAX_LABEL:
            raise _RowError(f"{where}.rubric.{dim} = {v!r} is not an integer label in 0..{MAX_LABEL}")
        labels[dim] = int(v)
    total = raw.get("total")
    if total is None:
        labels["total"] = rubric_total(labels, task_type)  # type: ignore[arg-type]
    elif isinstance(total, bool) or not isinstance(total, (int, float)) or not 0.0 <= total <= 1.0:
        raise _RowError(f"{where}.rubric.total = {total!r} is not a normalized score in [0, 1]")
    else:
        labels["total"] = float(total)
    return labels


def _trace(raw: Any, task_type: str, where: str, negative: bool) -> Trace:
    if not isinstance(raw, dict):
        raise _RowError(f"{where} must be an object with reasoning and rubric")
    text = raw.get("reasoning")
    if not isinstance(text, str) or not text.strip():
        raise _RowError(f"{where}.reasoning is missing or empty")
    kind = raw.get("negative_kind")
    if negative and not (isinstance(kind, str) and kind):
        raise _RowError(f"{where}.negative_kind is missing")
    edit = raw.get("edit") if isinstance(raw.get("edit"), dict) else None
    return Trace(text, _rubric(raw.get("rubric"), task_type, where), kind if negative else None, edit)


_REQUIRED = ("problem_id", "source", "task_type", "problem", "reference_solution", "positive_pool", "negative_bank")


def parse_row(raw: Any) -> GroupRow:
    """One row from its JSON object; raises ValueError naming the bad field."""
    if not isinstance(raw, dict):
        raise _RowError(f"a row must be a JSON object, got {type(raw).__name__}")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise _RowError(f"missing field(s) {', '.join(missing)}")
    tt = _task_type(raw)
    pos, neg = raw["positive_pool"], raw["negative_bank"]
    if not isinstance(pos, list) or not pos:
        raise _RowError("positive_pool must be a non-empty list")
    if not isinstance(neg, list):
        raise _RowError("negative_bank must be a list")
    return GroupRow(
        problem_id=str(raw["problem_id"]), source=str(raw["source"]), task_type=tt,
        problem=str(raw["problem"]), reference_solution=str(raw["reference_solution"] or ""),
        positive_pool=[_trace(t, tt, f"positive_pool[{i}]", False) for i, t in enumerate(pos)],
        negative_bank=[_trace(t, tt, f"negative_bank[{i}]", True) for i, t in enumerate(neg)],
        extra={k: v for k, v in raw.items() if k not in _REQUIRED},
    )


def read_groups(path: str | Path) -> list[GroupRow]:
    """All rows of a groups JSONL file (ours or the published TraceLift-Groups); bad rows name file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"groups file {path} does not exist", "build one with `tl-eval build-groups --out FILE`")
    rows: list[GroupRow] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(parse_row(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})",
                                "each line must be one JSON object (JSONL)") from exc
            except _RowError as exc:
                raise DataError(f"{path}:{lineno}: {exc}",
                                "fix or drop that row; the schema is in docs/reason-rm.md") from exc
    if not rows:
        raise DataError(f"groups file {path} has no rows", "build one with `tl-eval build-groups`")
    return rows


def write_groups(rows: Iterable[GroupRow], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n
