"""Paired comparisons of two systems on the same problems: bootstrap CI, exact McNemar, sign test."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def paired_bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[float, float, float]:
    """(mean(a - b), low, high): percentile bootstrap over problems, resampled with replacement, seeded.

    `a` and `b` are per-problem success rates in [0, 1] of the same problems in the same order (or values in
    `value_range`: a per-problem uplift lies in [-1, 1]).
    Resampling the per-problem differences keeps the pairing. When every difference is the same (one
    problem included) every resample is too, and the interval is that point.
    """
    a, b = _paired_arrays(a, b, "rates")
    lo, hi = value_range
    if np.any((a < lo) | (a > hi) | (b < lo) | (b > hi)):
        raise ValueError(f"paired_bootstrap_ci expects per-problem values in [{lo:g}, {hi:g}]")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    diff = a - b
    estimate = float(diff.mean())
    if np.all(diff == diff[0]):
        return estimate, estimate, estimate
    # Percentile rather than BCa: BCa's jackknife acceleration is undefined for many 0/1-valued samples
    # (scipy returns NaN with a warning), and evaluation harnesses conventionally report percentile CIs.
    result = stats.bootstrap(
        (diff,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        batch=max(1, 2_000_000 // diff.size),  # bounds memory at ~16 MB per batch
        rng=np.random.default_rng(seed),
    )
    return estimate, float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_ratio_bootstrap_ci(
    num_a: np.ndarray,
    num_b: np.ndarray,
    den_a: np.ndarray,
    den_b: np.ndarray,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None, float | None]:
    """(mean(num_a - num_b) / mean(den_a - den_b), low, high): a ratio of two paired differences over the same
    problems (e.g. a planner's uplift over the reference plan's uplift), with a percentile bootstrap that
    resamples problems once for both differences, so the pairing holds in numerator and denominator alike.
    Resamples whose denominator is 0 are left out; (None, None, None) when the denominator itself is 0."""
    num_a, num_b = _paired_arrays(num_a, num_b, "rates")
    den_a, den_b = _paired_arrays(den_a, den_b, "rates")
    if num_a.size != den_a.size:
        raise ValueError("numerator and denominator must cover the same problems")
    num, den = num_a - num_b, den_a - den_b
    if den.mean() == 0:
        return None, None, None
    estimate = float(num.mean() / den.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, size=(n_resamples, num.size))
    d = den[idx].mean(axis=1)
    ratios = num[idx].mean(axis=1)[d != 0] / d[d != 0]
    if ratios.size == 0:
        return estimate, None, None
    alpha = (1 - confidence) / 2
    return estimate, float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))


def mcnemar_exact(a_pass: np.ndarray, b_pass: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs (1.0 when there are none)."""
    a_only, b_only = discordant_counts(a_pass, b_pass)
    if a_only + b_only == 0:
        return 1.0
    return float(stats.binomtest(a_only, a_only + b_only, 0.5, alternative="two-sided").pvalue)


def discordant_counts(a_pass: np.ndarray, b_pass: np.ndarray) -> tuple[int, int]:
    """(problems only a passes, problems only b passes)."""
    a, b = _paired_arrays(a_pass, b_pass, "pass flags")
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise ValueError("McNemar needs one pass/fail flag per problem (booleans or 0/1)")
    a, b = a.astype(bool), b.astype(bool)
    return int(np.sum(a & ~b)), int(np.sum(~a & b))


def paired_sign_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided sign test on per-problem differences a - b (ties dropped; 1.0 when all tie)."""
    a, b = _paired_arrays(a, b, "rates")
    diff = a - b
    positive, negative = int(np.sum(diff > 0)), int(np.sum(diff < 0))
    if positive + negative == 0:
        return 1.0
    return float(stats.binomtest(positive, positive + negative, 0.5, alternative="two-sided").pvalue)


def uplift_stats(
    pair_rates: np.ndarray,
    exec_rates: np.ndarray,
    pair_pass_n1: np.ndarray | None = None,
    exec_pass_n1: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Uplift = mean(pair) - mean(exec) with a 95 % paired bootstrap CI and a paired test.

    With one sample per problem (`*_pass_n1` given) the test is exact McNemar on those flags; otherwise
    the sign test on per-problem rates. `discordant` counts the problems where one side does better.
    """
    pair, execu = _paired_arrays(pair_rates, exec_rates, "rates")
    uplift, low, high = paired_bootstrap_ci(pair, execu, seed=seed)
    if (pair_pass_n1 is None) != (exec_pass_n1 is None):
        raise ValueError("give both pair_pass_n1 and exec_pass_n1 (one sample per problem) or neither")
    if pair_pass_n1 is not None:
        if len(pair_pass_n1) != len(pair) or len(exec_pass_n1) != len(pair):
            raise ValueError("the n=1 pass flags must cover the same problems as the rates")
        pair_only, exec_only = discordant_counts(pair_pass_n1, exec_pass_n1)
        p_value, test = mcnemar_exact(pair_pass_n1, exec_pass_n1), "mcnemar_exact"
    else:
        pair_only, exec_only = int(np.sum(pair > execu)), int(np.sum(execu > pair))
        p_value, test = paired_sign_test(pair, execu), "sign_test"
    return {
        "uplift": uplift,
        "uplift_ci_low": low,
        "uplift_ci_high": high,
        "p_value": p_value,
        "test": test,
        "n_problems": int(pair.size),
        "discordant": {"pair_only": pair_only, "exec_only": exec_only},
    }


def pooled_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk: int = 1_000,
) -> tuple[float, float, float, float]:
    """(difference, low, high, p): group A's mean per-problem value minus group B's, pooled over the seeds of
    each group, with a two-level (hierarchical) percentile bootstrap.

    `a` is (seeds of A, problems), `b` is (seeds of B, problems), the same problems in the same order. Each
    resample draws seeds with replacement within each group (the spread between training runs) and then
    problems with replacement, the same draw for both groups (the pairing on problems). `p` is two-sided: how
    often the resampled difference, centred on the estimate, lies as far from it as the estimate lies from 0.
    With one seed per group it is the paired bootstrap over problems.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0 or 0 in (a.shape[0], b.shape[0]):
        raise ValueError(f"pooled_bootstrap needs (seeds, problems) arrays over the same problems, got {a.shape} "
                         f"and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("pooled values contain NaN or infinity")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    estimate = float(a.mean() - b.mean())
    n_problems = a.shape[1]
    draws = []
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        # Counts of each seed and each problem in a resample: the means they weight are the resampled means.
        wa = rng.multinomial(a.shape[0], np.full(a.shape[0], 1 / a.shape[0]), size=r) / a.shape[0]
        wb = rng.multinomial(b.shape[0], np.full(b.shape[0], 1 / b.shape[0]), size=r) / b.shape[0]
        wp = rng.multinomial(n_problems, np.full(n_problems, 1 / n_problems), size=r) / n_problems
        per_problem = wa @ a - wb @ b  # (r, problems): the resampled seeds' mean difference on each problem
        draws.append((per_problem * wp).sum(axis=1))
    d = np.concatenate(draws)
    tail = (1 - confidence) / 2
    low, high = np.quantile(d, [tail, 1 - tail])
    p = float(np.mean(np.abs(d - estimate) >= abs(estimate))) if estimate else 1.0
    return estimate, float(low), float(high), min(1.0, p)


def _paired_arrays(a, b, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"paired {what} must be 1-D arrays, one value per problem")
    if a.size != b.size:
        raise ValueError(f"paired {what} cover different numbers of problems: {a.size} vs {b.size}")
    if a.size == 0:
        raise ValueError(f"paired {what} are empty: no problems to compare")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"paired {what} contain NaN or infinity")
    return a, b
