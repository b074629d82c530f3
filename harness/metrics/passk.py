"""pass@k: the unbiased estimator of Chen et al. (2021), per problem and averaged over problems."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k): the chance that at least one of k draws from n samples (c correct) passes.

    Computed as a product of (1 - k/i) for i in n-c+1..n, which never forms the huge binomials.
    """
    n, c, k = _as_count(n, "n"), _as_count(c, "c"), _as_count(k, "k")
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}; report pass@k only for k <= n")
    if c > n:
        raise ValueError(f"c={c} correct samples out of n={n} is impossible")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_mean(ns: Sequence[int] | np.ndarray | int, cs: Sequence[int] | np.ndarray, k: int) -> float:
    """Mean of pass@k over problems; `ns` is one n for all problems or one per problem."""
    cs = np.asarray(cs)
    if cs.ndim != 1 or cs.size == 0:
        raise ValueError("pass_at_k_mean needs a non-empty 1-D array of per-problem correct counts")
    ns = np.broadcast_to(np.asarray(ns), cs.shape)
    return float(np.mean([pass_at_k(int(n), int(c), k) for n, c in zip(ns, cs)]))


def _as_count(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
