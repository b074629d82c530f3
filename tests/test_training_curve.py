"""The trainer's learning evidence: reward gain with its bootstrap CI, and the reward curve."""

from __future__ import annotations

import numpy as np
import pytest

from tl_eval.training.grpo.curve import plot_reward_curve, reward_gain


def _metrics(rewards):
    return [{"step": i + 1, "reward": float(r), "loss": 0.0} for i, r in enumerate(rewards)]


def test_a_rising_reward_has_a_gain_whose_ci_excludes_zero():
    rng = np.random.default_rng(0)
    rising = np.linspace(0.2, 0.8, 40) + rng.normal(0, 0.05, 40)
    gain = reward_gain(_metrics(rising))
    assert gain["steps_per_quarter"] == 10
    assert gain["value"] == pytest.approx(rising[-10:].mean() - rising[:10].mean())
    assert 0 < gain["ci_low"] < gain["value"] < gain["ci_high"]


def test_a_flat_reward_has_a_ci_around_zero_and_short_runs_have_none():
    rng = np.random.default_rng(1)
    gain = reward_gain(_metrics(rng.binomial(1, 0.5, 40) / 1.0))
    assert gain["ci_low"] < 0 < gain["ci_high"]
    assert reward_gain(_metrics([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])) is None  # under 8 logged steps
    assert reward_gain([{"step": 1, "loss": 0.0}]) is None  # no reward logged


def test_the_curve_is_a_png(tmp_path):
    path = plot_reward_curve(_metrics(np.linspace(0, 1, 12)), tmp_path / "reward_curve.png", "exec-only on gsm8k")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_reward_curve([], tmp_path / "none.png") is None


def test_the_problem_paired_gain_takes_out_which_problems_a_step_saw():
    from tl_eval.training.grpo.curve import problem_paired_gain

    # 8 problems, 2 a step; no learning at all, but the last steps happen to see the easy problems.
    easy = {f"p{i}": 0.9 if i >= 4 else 0.1 for i in range(8)}
    order = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    turns = [{"step": 1 + i // 2, "problem_id": pid, "reward": easy[pid]} for i, pid in enumerate(order) for _ in range(4)]
    steps = {}
    for t in turns:
        steps.setdefault(t["step"], []).append(t["reward"])
    metrics = [{"step": s, "reward": float(np.mean(r))} for s, r in sorted(steps.items())]
    assert reward_gain(metrics)["value"] > 0.7  # the quarters compare hard problems with easy ones
    flat = problem_paired_gain(turns)
    assert flat["value"] == 0 and flat["problems"] == 8 and flat["ci_low"] == flat["ci_high"] == 0
    # Each problem's reward rises by 0.3 between its visits: the paired gain sees it, whatever the problem.
    rising = [dict(t, reward=t["reward"] * 0.5 + (0.3 if t["step"] > 4 else 0.0)) for t in turns]
    gain = problem_paired_gain(rising)
    assert gain["value"] == pytest.approx(0.3) and gain["ci_low"] > 0
    assert problem_paired_gain(turns[:8]) is None  # too few problems seen twice
