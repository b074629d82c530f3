"""Headroom: the reference plan's uplift per task and each planner's share of it (issue 32)."""

import numpy as np

from tl_eval.harness.metrics.paired import paired_ratio_bootstrap_ci
from tl_eval.reports.headroom import headroom
from tl_eval.reports.load import FULL
from tl_eval.reports.systems import System, Value


class _Fixed(System):
    """A system whose uplift and outcomes are given, without run files."""

    def __init__(self, key, label, outcomes, uplift, planner_system=None):
        super().__init__(key=key, label=label, planner="p", executor="e", condition=FULL, runs={"t": None},
                         planner_system=planner_system)
        self._o, self._u = outcomes, uplift

    def outcomes(self, task, condition=None):
        return self._o.get(condition or FULL)

    def uplift(self, task, name="uplift"):
        return self._u

    def n_problems(self, task):
        return len(self._o[FULL])


def test_ratio_bootstrap_is_the_share_of_the_reference_uplift():
    none = np.zeros(40)
    ref = np.r_[np.ones(20), np.zeros(20)]
    half = np.r_[np.ones(10), np.zeros(30)]
    value, lo, hi = paired_ratio_bootstrap_ci(half, none, ref, none, n_resamples=500)
    assert value == 0.5 and lo < 0.5 < hi
    assert paired_ratio_bootstrap_ci(half, none, none, none) == (None, None, None)


def test_shares_only_where_the_reference_uplift_is_significant():
    ids = [f"p{i}" for i in range(40)]
    none = {p: 0.0 for p in ids}
    ref = _Fixed("r", "reference plan → e", {FULL: {p: float(i < 20) for i, p in enumerate(ids)}, "none": none},
                 Value(0.5, 0.35, 0.65), planner_system="reference plan")
    other = _Fixed("o", "planner → e", {FULL: {p: float(i < 10) for i, p in enumerate(ids)}, "none": none},
                   Value(0.25, 0.1, 0.4))
    room = headroom("t", [ref, other], n_resamples=300)
    assert room.significant and room.shares["o"].value == 0.5 and room.shares["r"].value == 1.0
    assert "headroom" in room.note
    flat = _Fixed("r", "reference plan → e", ref._o, Value(0.05, -0.05, 0.15), planner_system="reference plan")
    room = headroom("t", [flat, other], n_resamples=300)
    assert not room.significant and not room.shares and "no significant uplift" in room.note
    assert "no reference-plan row" in headroom("t", [other]).note
