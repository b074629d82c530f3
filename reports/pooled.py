"""A pooled comparison of two groups of systems (e.g. the TraceLift and the exec-only checkpoints of three training
seeds each): the paired difference in each metric, pooled over seeds, with a hierarchical bootstrap."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tl_eval.harness.errors import ConfigError
from tl_eval.reports.compare import PAIRED_METRICS, metric_vector, verdict_sentence
from tl_eval.reports.systems import System


@dataclass
class PooledDiff:
    """Group A − group B in `metric` on `task`, over the problems every system of both groups was scored on."""

    task: str
    metric: str
    a: str
    b: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    confidence: float
    seeds_a: list[tuple[str, float]]  # each system of the group with its own value on those problems
    seeds_b: list[tuple[str, float]]
    caveats: list[str] = field(default_factory=list)

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def sentence(self) -> str:
        return verdict_sentence(self, "hierarchical bootstrap", "Pooled over seeds, ",
                                f"; {len(self.seeds_a)} vs {len(self.seeds_b)} seeds, {self.n} problems")

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant, "sentence": self.sentence()}


def parse_pools(values: list[str]) -> dict[str, list[str]]:
    """`LABEL=DIR[,DIR...]` options (repeatable; one label may be given several times) as {label: [dirs]}."""
    pools: dict[str, list[str]] = {}
    for value in values:
        label, sep, dirs = value.partition("=")
        if not sep or not label.strip() or not dirs.strip():
            raise ConfigError(f"--pool {value!r} is not LABEL=DIR[,DIR...]",
                              "e.g. --pool tracelift=runs/tl-s1,runs/tl-s2 --pool exec-only=runs/eo-s1,runs/eo-s2")
        pools.setdefault(label.strip(), []).extend(d for d in dirs.split(",") if d)
    if pools and len(pools) != 2:
        raise ConfigError(f"--pool names {len(pools)} groups ({', '.join(pools)}); a pooled comparison has two",
                          "give two labels, each with the run directories of its seeds")
    return pools


def pooled_diffs(task: str, a_label: str, a: list[System], b_label: str, b: list[System], *, alpha: float = 0.05,
                 confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> list[PooledDiff]:
    """Every metric of PAIRED_METRICS that all systems of both groups have per-problem values for."""
    from tl_eval.harness.metrics.paired import pooled_bootstrap

    out = []
    for metric, _, _ in PAIRED_METRICS:
        va = [metric_vector(s, task, metric) for s in a]
        vb = [metric_vector(s, task, metric) for s in b]
        if any(v is None for v in va + vb):
            continue
        common = sorted(set.intersection(*(set(v) for v in va + vb)))
        if not common:
            continue
        caveats = []
        largest = max(len(v) for v in va + vb)
        if len(common) < largest:
            caveats.append(f"only the {len(common)} problems all {len(va) + len(vb)} systems share (of up to {largest})")
        xa = np.array([[v[p] for p in common] for v in va])
        xb = np.array([[v[p] for p in common] for v in vb])
        diff, low, high, p = pooled_bootstrap(xa, xb, n_resamples=n_resamples, confidence=confidence, seed=seed)
        out.append(PooledDiff(task, metric, a_label, b_label, len(common), float(xa.mean()), float(xb.mean()), diff,
                              low, high, p, alpha, confidence,
                              [(s.label, float(m)) for s, m in zip(a, xa.mean(axis=1))],
                              [(s.label, float(m)) for s, m in zip(b, xb.mean(axis=1))], caveats))
    return out
