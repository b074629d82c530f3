"""Headroom: how much a perfect plan lifts the executor on a task (the reference plan's uplift), and the share of
it each planner reaches (its uplift ÷ the reference plan's, with a bootstrap CI over their common problems)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tl_eval.harness.metrics.paired import paired_ratio_bootstrap_ci
from tl_eval.reports.fmt import cell
from tl_eval.reports.load import FULL, NONE
from tl_eval.reports.systems import MISSING, System, Value

REFERENCE = "reference plan"


@dataclass
class Headroom:
    """One task's headroom: the reference system, its uplift, whether that uplift's CI excludes 0, and per system
    key the share of the headroom it reaches (only where the headroom is significant)."""

    task: str
    reference: str | None = None  # the reference plan's row name
    uplift: Value = MISSING
    significant: bool = False
    shares: dict[str, Value] = field(default_factory=dict)

    @property
    def note(self) -> str:
        if self.reference is None:
            return f"{self.task}: no reference-plan row, so no headroom (run `tl-eval --planner reference`)."
        c = cell(self.uplift, "pp")
        if not self.significant:
            return (f"{self.task}: the reference plan gives no significant uplift ({c.text} pp {c.ci}): "
                    "headroom shares are not shown.")
        return f"{self.task}: headroom (the reference plan's uplift) {c.text} pp {c.ci}."

    def to_dict(self) -> dict:
        return {"reference": self.reference, "uplift": cell(self.uplift, "pp").to_dict() | self.uplift.to_dict(),
                "significant": self.significant, "note": self.note}


def headroom(task: str, systems: list[System], n_resamples: int = 2000, seed: int = 0) -> Headroom:
    """The task's headroom from the first reference-plan system that has it; shares for every pair system with
    per-problem outcomes under full and none on problems the reference also has."""
    refs = [s for s in systems if task in s.runs and s.planner_system == REFERENCE and not s.executor_alone]
    out = Headroom(task)
    if not refs:
        return out
    ref = max(refs, key=lambda s: s.n_problems(task))
    out.reference, out.uplift = ref.label, ref.uplift(task)
    u = out.uplift
    out.significant = u.value is not None and u.ci_low is not None and (u.ci_low > 0 or u.ci_high < 0)
    if not out.significant or u.value <= 0:
        out.significant = out.significant and (u.value or 0) > 0
        return out
    ref_full, ref_none = ref.outcomes(task, FULL), ref.outcomes(task, NONE)
    if not ref_full or not ref_none:
        return out
    for s in systems:
        if task not in s.runs or s.executor_alone:
            continue
        full, none = s.outcomes(task, FULL), s.outcomes(task, NONE) or ref_none
        if not full:
            continue
        ids = [p for p in full if p in none and p in ref_full and p in ref_none]
        if not ids:
            continue
        arr = lambda d: np.array([d[p] for p in ids], dtype=float)  # noqa: E731
        value, lo, hi = paired_ratio_bootstrap_ci(arr(full), arr(none), arr(ref_full), arr(ref_none),
                                                  n_resamples=n_resamples, seed=seed)
        if value is not None:
            out.shares[s.key] = Value(value, lo, hi, source=f"headroom over {len(ids)} problems vs {ref.label}")
    return out
