"""Did the run learn? The reward gain (last quarter of steps minus first quarter, with a bootstrap CI), the same
problems' reward at their last visit minus their first, and the reward curve, from metrics.jsonl and turns.jsonl."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def step_rewards(metrics: list[dict], key: str = "reward") -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean reward of each logged step), in step order; `key` another logged series
    (`rewards/<function>/mean`: one reward function's part of the total)."""
    rows = sorted((m["step"], m[key]) for m in metrics if key in m and "step" in m)
    return np.array([s for s, _ in rows]), np.array([r for _, r in rows], dtype=float)


def reward_gain(metrics: list[dict], key: str = "reward", n_resamples: int = 10000, confidence: float = 0.95,
                seed: int = 0) -> dict | None:
    """Mean reward of the last quarter of logged steps minus the first quarter, with a percentile bootstrap CI
    (steps resampled within each quarter); None with fewer than 8 logged steps."""
    from scipy.stats import bootstrap

    _, rewards = step_rewards(metrics, key)
    q = len(rewards) // 4
    if q < 2:
        return None
    first, last = rewards[:q], rewards[-q:]
    ci = bootstrap((last, first), lambda a, b, axis=-1: a.mean(axis=axis) - b.mean(axis=axis),
                   n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return {"value": float(last.mean() - first.mean()), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "first_mean": float(first.mean()), "last_mean": float(last.mean()), "steps_per_quarter": q,
            "confidence": confidence}


def problem_paired_gain(turns: list[dict], n_resamples: int = 10000, confidence: float = 0.95,
                        seed: int = 0) -> dict | None:
    """The mode's reward on each problem at its last visit minus its first (the mean over that step's group of
    completions), averaged over problems seen at two steps or more, with a percentile bootstrap CI over problems.

    The quarter gain (`reward_gain`) compares steps, and with a few prompts a step its first and last quarters see
    different problems, so how hard they are moves it as much as learning does; pairing on the problem takes that
    out. Read from turns.jsonl (each sampled turn's problem, step and reward); None with fewer than 4 problems
    seen twice."""
    by: dict[str, dict[int, list[float]]] = {}
    for t in turns:
        if t.get("step") is not None:
            by.setdefault(t["problem_id"], {}).setdefault(t["step"], []).append(float(t["reward"]))
    pairs = [(np.mean(v[min(v)]), np.mean(v[max(v)])) for v in by.values() if len(v) >= 2]
    if len(pairs) < 4:
        return None
    first, last = np.array(pairs).T
    diff = last - first
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, len(diff), size=(n_resamples, len(diff)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return {"value": float(diff.mean()), "ci_low": float(low), "ci_high": float(high),
            "first_mean": float(first.mean()), "last_mean": float(last.mean()), "problems": len(diff),
            "confidence": confidence}


def plot_reward_curve(metrics: list[dict], path: Path, title: str = "") -> Path | None:
    """The reward per step and its running mean over a quarter of the run, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, rewards = step_rewards(metrics)
    if len(steps) == 0:
        return None
    window = max(1, len(rewards) // 4)
    running = np.convolve(rewards, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    ax.plot(steps, rewards, "o-", color="#9ab", markersize=3, linewidth=1, label="reward (mean of the step's group)")
    ax.plot(steps[window - 1:], running, color="#c33", linewidth=2, label=f"running mean over {window} steps")
    parts = sorted({k for m in metrics for k in m if k.startswith("rewards/") and k.endswith("/mean")})
    if len(parts) > 1:  # several reward functions: each one's own mean, unweighted
        for key, color in zip(parts, ("#37a", "#a73", "#3a7", "#73a")):
            x, y = step_rewards(metrics, key)
            ax.plot(x, y, "--", color=color, linewidth=1, label=key.split("/")[1] + " (unweighted)")
    gain = reward_gain(metrics)
    if gain is not None:
        ax.set_title(f"{title}  gain {gain['value']:+.3f} [{gain['ci_low']:+.3f}, {gain['ci_high']:+.3f}]".strip())
    elif title:
        ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
