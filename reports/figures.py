"""Matplotlib figures of a comparison report, saved as PNG and SVG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

from tl_eval.reports.systems import System

PAIR_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#bcbd22", "#7f7f7f"]
EXEC_COLOR = "#9e9e9e"


@dataclass
class SavedFigure:
    name: str
    title: str
    caption: str
    png: Path
    svg: Path


def _color(i: int) -> str:
    return PAIR_COLORS[i % len(PAIR_COLORS)]


def _save(fig: Figure, out: Path, name: str, title: str, caption: str) -> SavedFigure:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})  # no date: same input, same file
    return SavedFigure(name, title, caption, png, svg)


def _grid(n: int, width: float, row_height: float, rows_per_panel: int, min_height: float = 2.2) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, max(min_height, 0.9 + row_height * rows_per_panel) * n), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _err(v) -> tuple[float, float]:
    lo = v.value - v.ci_low if v.ci_low is not None else 0.0
    hi = v.ci_high - v.value if v.ci_high is not None else 0.0
    return max(lo, 0.0), max(hi, 0.0)


def pass_at_1(systems: list[System], tasks: list[str], out: Path) -> SavedFigure:
    """Horizontal bars of pass@1 with 95 % CIs: each pair system, and each executor alone (grey, hatched)."""
    fig, axes = _grid(len(tasks), 8.5, 0.42, len(systems))
    pair_index = {s.key: i for i, s in enumerate(s for s in systems if not s.executor_alone)}
    for ax, task in zip(axes, tasks):
        shown = [s for s in systems if task in s.runs and s.pass1(task).value is not None]
        ys = np.arange(len(shown))[::-1]
        for y, s in zip(ys, shown):
            v = s.pass1(task)
            lo, hi = _err(v)
            color = EXEC_COLOR if s.executor_alone else _color(pair_index[s.key])
            ax.barh(y, 100 * v.value, color=color, hatch="//" if s.executor_alone else None,
                    edgecolor="white" if s.executor_alone else color, height=0.7)
            ax.errorbar(100 * v.value, y, xerr=[[100 * lo], [100 * hi]], fmt="none", ecolor="black", capsize=3)
            ax.text(min(100 * (v.ci_high if v.ci_high is not None else v.value), 100) + 1.5, y,
                    f"{100 * v.value:.1f}", va="center", fontsize=8)
        ax.set_yticks(ys, [s.label for s in shown], fontsize=9)
        ax.set_xlim(0, 110)
        ax.set_xlabel("pass@1 (%) with 95% CI")
        ax.set_title(task, loc="left", fontweight="bold")
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, out, "pass_at_1", "pass@1 per task and system",
                 "Bars: pass@1 of each planner-executor pair (colour) and of each executor alone (grey, hatched); "
                 "whiskers: 95% bootstrap CI over problems.")


def uplift_forest(systems: list[System], tasks: list[str], out: Path) -> SavedFigure:
    """Forest plot: uplift estimate and 95 % CI per pair system and task."""
    pairs = [s for s in systems if not s.executor_alone]
    fig, axes = _grid(len(tasks), 8.5, 0.42, len(pairs))
    for ax, task in zip(axes, tasks):
        shown = [(i, s) for i, s in enumerate(pairs) if s.uplift(task).value is not None]
        ys = np.arange(len(shown))[::-1]
        for y, (i, s) in zip(ys, shown):
            v = s.uplift(task)
            lo, hi = _err(v)
            ax.errorbar(100 * v.value, y, xerr=[[100 * lo], [100 * hi]], fmt="s", color=_color(i), capsize=4,
                        markersize=7)
            ax.text(100 * (v.ci_high if v.ci_high is not None else v.value) + 1.5, y,
                    f"{100 * v.value:+.1f}", va="center", fontsize=8)
        ax.axvline(0, color="black", lw=1, ls="--")
        ax.set_yticks(ys, [s.label for _, s in shown], fontsize=9)
        ax.set_ylim(-0.7, max(len(shown), 1) - 0.3)
        ax.set_xlim(-105, 110)
        ax.set_xlabel("uplift = pair − executor alone (pp), 95% CI")
        ax.set_title(task, loc="left", fontweight="bold")
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, out, "uplift_forest", "Uplift over the executor alone",
                 "Squares: uplift (pair pass@1 − executor-alone pass@1, percentage points); whiskers: 95% paired "
                 "bootstrap CI. An interval that crosses the dashed zero line is not significant.")


def early_answering(systems: list[System], tasks: list[str], out: Path) -> SavedFigure | None:
    """Agreement with the full-trace outcome vs the fraction of the trace shown, per system."""
    pairs = [s for s in systems if not s.executor_alone]
    panels = [t for t in tasks if any(s.curve(t) for s in pairs)]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 7.5, 0.0, 0, min_height=3.4)
    for ax, task in zip(axes, panels):
        for i, s in enumerate(pairs):
            pts = s.curve(task)
            if pts:
                ax.plot([100 * x for x, _ in pts], [100 * y for _, y in pts], marker="o", color=_color(i),
                        label=s.label)
        ax.set_xlim(-3, 103)
        ax.set_ylim(0, 105)
        ax.set_xlabel("share of the trace shown to the executor (%)")
        ax.set_ylabel("agreement with full trace (%)")
        ax.set_title(task, loc="left", fontweight="bold")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, out, "early_answering", "Early-answering curve",
                 "Share of samples whose outcome with a truncated trace equals the outcome with the full trace "
                 "(0% = no trace). A curve that is high from the start means the executor hardly uses the trace.")


def accuracy_by_condition(systems: list[System], tasks: list[str], out: Path) -> SavedFigure | None:
    """Grouped bars of accuracy per trace condition, when runs have more than full and none."""
    pairs = [s for s in systems if not s.executor_alone]
    panels = [t for t in tasks if any(len(s.accuracy_by_condition(t)) > 2 for s in pairs)]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 9.5, 0.0, 0, min_height=3.4)
    for ax, task in zip(axes, panels):
        conds: list[str] = []
        for s in pairs:
            conds += [c for c in s.accuracy_by_condition(task) if c not in conds]
        width = 0.8 / max(len(pairs), 1)
        for i, s in enumerate(pairs):
            acc = s.accuracy_by_condition(task)
            xs = [j + (i - (len(pairs) - 1) / 2) * width for j, c in enumerate(conds) if c in acc]
            vals = [acc[c] for c in conds if c in acc]
            errs = np.array([_err(v) for v in vals]).T * 100 if vals else None
            ax.bar(xs, [100 * v.value for v in vals], width=width, color=_color(i), label=s.label,
                   yerr=errs, capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_xticks(range(len(conds)), conds, rotation=20, fontsize=9)
        ax.set_ylim(0, 105)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(task, loc="left", fontweight="bold")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: bars reach the top
    return _save(fig, out, "accuracy_by_condition", "Accuracy per trace condition",
                 "Executor accuracy with the full trace, no trace, truncated, corrupted, filler and mismatched "
                 "traces; whiskers: 95% CI.")


def outcome_grid(systems: list[System], tasks: list[str], out: Path) -> SavedFigure | None:
    """Problems × systems: pass rate per cell; problems where systems disagree come first, left of the line."""
    panels = []
    for task in tasks:
        shown = [s for s in systems if task in s.runs and s.outcomes(task) is not None]
        if not shown:
            continue
        ids: list[str] = []
        for s in shown:
            ids += [p for p in s.outcomes(task) if p not in set(ids)]
        grid = np.full((len(shown), len(ids)), np.nan)
        for r, s in enumerate(shown):
            o = s.outcomes(task)
            for c, pid in enumerate(ids):
                if pid in o:
                    grid[r, c] = o[pid]
        disagree = [not np.allclose(col[~np.isnan(col)], col[~np.isnan(col)][0]) if (~np.isnan(col)).any() else False
                    for col in grid.T]
        order = [i for i in range(len(ids)) if disagree[i]] + [i for i in range(len(ids)) if not disagree[i]]
        panels.append((task, shown, [ids[i] for i in order], grid[:, order], sum(disagree)))
    if not panels:
        return None
    max_cols = max(len(p[2]) for p in panels)
    width = min(max(6.0, 2.5 + 0.22 * max_cols), 22.0)
    fig = Figure(figsize=(width, sum(1.6 + 0.35 * len(p[1]) for p in panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    cmap = ListedColormap(["#d73027", "#fdae61", "#fee08b", "#a6d96a", "#1a9850"]).with_extremes(bad="#e0e0e0")
    for ax, (task, shown, ids, grid, n_dis) in zip(axes, panels):
        ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(shown)), [s.label for s in shown], fontsize=9)
        if len(ids) <= 60:
            ax.set_xticks(range(len(ids)), [i.split("/")[-1] for i in ids], rotation=90, fontsize=7)
        else:
            ax.set_xticks([])
        ax.set_xticks(np.arange(-0.5, len(ids)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(shown)), minor=True)
        ax.grid(which="minor", color="white", lw=0.6)
        ax.tick_params(which="minor", length=0)
        if 0 < n_dis < len(ids):
            ax.axvline(n_dis - 0.5, color="black", lw=2)
        where = " (left of the line)" if 0 < n_dis < len(ids) else ""
        ax.set_title(f"{task}: {n_dis} of {len(ids)} problems where systems disagree{where}",
                     loc="left", fontweight="bold", fontsize=10)
        ax.set_xlabel("problem")
    return _save(fig, out, "outcome_grid", "Per-problem outcomes",
                 "Each cell: the system's pass rate on one problem (green pass, red fail, shades for several "
                 "samples, grey not run). Problems where the systems disagree are on the left.")
