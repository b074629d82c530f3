"""pass@k, paired bootstrap CI, exact McNemar, sign test and uplift statistics against known values."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from tl_eval.harness.metrics.paired import (
    discordant_counts,
    mcnemar_exact,
    paired_bootstrap_ci,
    paired_sign_test,
    uplift_stats,
)
from tl_eval.harness.metrics.passk import pass_at_k, pass_at_k_mean


# --- pass@k ---------------------------------------------------------------------------------------------


def test_pass_at_k_known_values():
    # Chen et al. (2021): n=10 samples with c=3 correct
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - comb(7, 5) / comb(10, 5))  # 11/12
    assert pass_at_k(10, 3, 5) == pytest.approx(11 / 12)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k failures: every k-subset holds a pass
    assert pass_at_k(1, 1, 1) == 1.0


@pytest.mark.parametrize("n", [1, 2, 5, 13, 40])
def test_pass_at_k_matches_the_binomial_formula(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            exact = 1 - Fraction(comb(n - c, k), comb(n, k))
            assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    # C(2000, 1000) overflows a float; the product form does not need it.
    value = pass_at_k(2000, 3, 1000)
    exact = 1 - Fraction(comb(1997, 1000), comb(2000, 1000))
    assert value == pytest.approx(float(exact), rel=1e-12)


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 0)
    with pytest.raises(ValueError):
        pass_at_k(3, -1, 1)


def test_pass_at_k_mean():
    assert pass_at_k_mean([10, 10], [3, 0], 1) == pytest.approx(0.15)
    assert pass_at_k_mean(10, [3, 10, 0], 5) == pytest.approx((11 / 12 + 1 + 0) / 3)
    with pytest.raises(ValueError):
        pass_at_k_mean([10, 2], [3, 1], 5)
    with pytest.raises(ValueError):
        pass_at_k_mean(10, [], 1)


# --- McNemar and the sign test --------------------------------------------------------------------------


def _flags(a_only: int, b_only: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return np.array(a), np.array(b)


def _two_sided_binomial(x: int, n: int) -> float:
    """Exact two-sided p for Binomial(n, 1/2): twice the smaller tail, capped at 1."""
    tail = sum(comb(n, i) for i in range(min(x, n - x) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_mcnemar_known_value():
    a, b = _flags(a_only=7, b_only=1, both=20, neither=5)
    assert discordant_counts(a, b) == (7, 1)
    assert mcnemar_exact(a, b) == pytest.approx(2 * (1 + 8) / 256)  # 0.0703125


@pytest.mark.parametrize("a_only, b_only", [(0, 5), (3, 3), (10, 2), (1, 12), (25, 14)])
def test_mcnemar_matches_the_binomial_formula(a_only, b_only):
    a, b = _flags(a_only, b_only, both=11, neither=4)
    assert mcnemar_exact(a, b) == pytest.approx(_two_sided_binomial(a_only, a_only + b_only))
    assert mcnemar_exact(b, a) == pytest.approx(mcnemar_exact(a, b))


def test_mcnemar_without_discordant_pairs_is_one():
    a, b = _flags(0, 0, both=9, neither=3)
    assert mcnemar_exact(a, b) == 1.0


def test_mcnemar_rejects_rates():
    with pytest.raises(ValueError, match="pass/fail"):
        mcnemar_exact(np.array([0.5, 1.0]), np.array([0.0, 1.0]))


def test_sign_test_drops_ties():
    a = np.array([1.0] * 8 + [0.0] * 2 + [0.5] * 6)
    b = np.array([0.0] * 8 + [1.0] * 2 + [0.5] * 6)
    assert paired_sign_test(a, b) == pytest.approx(_two_sided_binomial(2, 10))  # 0.109375
    assert paired_sign_test(a, b) == pytest.approx(0.109375)
    assert paired_sign_test(np.full(4, 0.3), np.full(4, 0.3)) == 1.0


# --- bootstrap ------------------------------------------------------------------------------------------


def test_bootstrap_of_a_constant_difference_is_a_point():
    a = np.array([1.0, 0.5, 0.75, 1.0])
    assert paired_bootstrap_ci(a, a - 0.25) == (pytest.approx(0.25),) * 3
    assert paired_bootstrap_ci(np.array([1.0]), np.array([0.0])) == (1.0, 1.0, 1.0)


def test_bootstrap_is_seeded_and_deterministic():
    rng = np.random.default_rng(5)
    a, b = rng.random(60), rng.random(60)
    first = paired_bootstrap_ci(a, b, n_resamples=2000, seed=3)
    assert paired_bootstrap_ci(a, b, n_resamples=2000, seed=3) == first
    assert paired_bootstrap_ci(a, b, n_resamples=2000, seed=4) != first
    estimate, low, high = first
    assert estimate == pytest.approx(float(np.mean(a - b)))
    assert low < estimate < high


def test_bootstrap_agrees_with_the_normal_approximation_for_many_problems():
    rng = np.random.default_rng(11)
    a = (rng.random(2000) < 0.6).astype(float)
    b = (rng.random(2000) < 0.5).astype(float)
    estimate, low, high = paired_bootstrap_ci(a, b, n_resamples=4000)
    d = a - b
    half = 1.959964 * d.std(ddof=1) / np.sqrt(d.size)
    assert low == pytest.approx(estimate - half, abs=0.004)
    assert high == pytest.approx(estimate + half, abs=0.004)


def test_bootstrap_ci_covers_the_true_mean_in_simulation():
    # Per-problem success rates of two systems with a known true difference of 0.1 over 80 problems.
    rng = np.random.default_rng(0)
    covered, trials = 0, 150
    for t in range(trials):
        p = rng.uniform(0.2, 0.8, size=80)
        a = rng.binomial(4, np.clip(p + 0.1, 0, 1)) / 4
        b = rng.binomial(4, p) / 4
        true = float(np.mean(np.clip(p + 0.1, 0, 1) - p))
        _, low, high = paired_bootstrap_ci(a, b, n_resamples=1000, seed=t)
        covered += low <= true <= high
    # Target: the true mean difference of the drawn problems. Resampling problems also counts their spread,
    # so coverage sits a little above the nominal 95 %; a too-narrow interval would fall well below 0.88.
    assert 0.88 <= covered / trials <= 0.99


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="different numbers"):
        paired_bootstrap_ci(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap_ci(np.array([]), np.array([]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        paired_bootstrap_ci(np.array([2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_ci(np.array([np.nan, 1]), np.array([1.0, 1]))


# --- uplift ---------------------------------------------------------------------------------------------


def test_uplift_stats_with_one_sample_uses_mcnemar():
    pair, execu = _flags(a_only=9, b_only=2, both=30, neither=9)
    stats = uplift_stats(pair.astype(float), execu.astype(float), pair, execu, seed=1)
    assert stats["test"] == "mcnemar_exact"
    assert stats["uplift"] == pytest.approx((9 - 2) / 50)
    assert stats["p_value"] == pytest.approx(_two_sided_binomial(9, 11))
    assert stats["discordant"] == {"pair_only": 9, "exec_only": 2}
    assert stats["n_problems"] == 50
    assert stats["uplift_ci_low"] < stats["uplift"] < stats["uplift_ci_high"]
    assert uplift_stats(pair.astype(float), execu.astype(float), pair, execu, seed=1) == stats


def test_uplift_stats_with_several_samples_uses_the_sign_test():
    pair = np.array([1.0, 2 / 3, 1 / 3, 1.0, 0.0, 1 / 3])
    execu = np.array([2 / 3, 2 / 3, 0.0, 1 / 3, 1 / 3, 0.0])
    stats = uplift_stats(pair, execu)
    assert stats["test"] == "sign_test"
    assert stats["discordant"] == {"pair_only": 4, "exec_only": 1}
    assert stats["p_value"] == pytest.approx(_two_sided_binomial(1, 5))
    assert stats["uplift"] == pytest.approx(float(np.mean(pair - execu)))


def test_uplift_stats_needs_both_flag_arrays():
    with pytest.raises(ValueError, match="both"):
        uplift_stats(np.ones(3), np.zeros(3), pair_pass_n1=np.ones(3, bool))
    with pytest.raises(ValueError, match="same problems"):
        uplift_stats(np.ones(3), np.zeros(3), np.ones(2, bool), np.zeros(2, bool))
