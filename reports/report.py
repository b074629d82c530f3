"""`tl-eval report`: a comparison of runs as report.md and a self-contained report.html, with figures."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.metrics import specs
from tl_eval.reports import figures
from tl_eval.reports.compare import (Issue, PairedDiff, PlanDiff, all_issues, paired_metric_diffs, plan_diff,
                                     system_caveats)
from tl_eval.reports.fmt import Cell, cell
from tl_eval.reports.load import Run, load_runs
from tl_eval.reports.pooled import PooledDiff, pooled_diffs
from tl_eval.reports.render import render
from tl_eval.reports.systems import MISSING, System, executor_alone_systems, pair_system

# (name, label, kind) of the columns after the headline ones, from the metric specs.
COST = tuple((m.name, m.label, m.kind) for m in specs.group("cost"))
FAITH = tuple((m.name, m.label, m.kind) for m in (*specs.group("faithfulness"), *specs.group("trace")))


@dataclass
class SystemRow:
    system: System
    n: int
    pass1: Cell
    exec1: Cell
    uplift: Cell
    p: Cell
    uplift_masked: Cell
    p_masked: Cell
    faith: list[Cell]
    cost: list[Cell]


@dataclass
class Refusal:
    task: str
    a: str
    b: str
    reason: str


@dataclass
class TaskSection:
    task: str
    rows: list[SystemRow]
    comparisons: list[PairedDiff] = field(default_factory=list)
    plan_diffs: list[PlanDiff] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


@dataclass
class Report:
    out: Path
    markdown: Path
    html: Path
    runs: list[Run]
    systems: list[System]
    sections: list[TaskSection]
    issues: list[Issue]
    figures: list[figures.SavedFigure]
    warnings: list[str] = field(default_factory=list)
    pooled: list[PooledDiff] = field(default_factory=list)


def _unique_labels(runs: list[Run]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for r in runs:
        label = r.label
        if sum(x.label == label for x in runs) > 1:
            label = f"{label} [{r.run_id.rsplit('__', 1)[-1]}]"
        labels[r.run_id] = label
    return labels


def build_systems(runs: list[Run]) -> list[System]:
    """Each run's pair, then each distinct executor alone."""
    labels = _unique_labels(runs)
    pairs = [pair_system(r, labels[r.run_id]) for r in runs]
    return [s for s in pairs if s.runs] + executor_alone_systems(runs)  # (`--planner none` runs: no pair)


def _row(s: System, task: str) -> SystemRow:
    return SystemRow(
        s, s.n_problems(task), cell(s.pass1(task)), cell(s.exec_pass1(task) if not s.executor_alone else MISSING),
        cell(s.uplift(task), "pp"), cell(s.uplift_p(task), "p"),
        cell(s.uplift(task, "uplift_masked"), "pp"), cell(s.uplift_p(task, "uplift_masked"), "p"),
        [cell(s.faithfulness(task, name), kind) for name, _, kind in FAITH],
        [cell(s.cost(task, name), kind) for name, _, kind in COST])


def _own_baseline(x: System, y: System, task: str) -> bool:
    """A pair and the executor alone of the same run: that comparison is the run's uplift."""
    return {x.executor_alone, y.executor_alone} == {True, False} and x.runs.get(task) is y.runs.get(task)


def task_section(task: str, systems: list[System], issues: list[Issue], *, alpha: float, confidence: float,
                 n_resamples: int, seed: int) -> TaskSection:
    shown = [s for s in systems if task in s.runs]
    section = TaskSection(task, [_row(s, task) for s in shown])
    for x, y in combinations(shown, 2):
        if _own_baseline(x, y, task):
            continue
        refused, caveats = system_caveats(x, y, task, issues)
        if refused:
            why = "; ".join(i.detail for i in issues if i.refused and i.task == task
                            and set(i.runs) == {x.runs[task].run_id, y.runs[task].run_id})
            section.refusals.append(Refusal(task, x.label, y.label, why or "not comparable"))
            continue
        diffs = paired_metric_diffs(task, x, y, alpha=alpha, confidence=confidence, n_resamples=n_resamples,
                                    seed=seed, caveats=caveats)
        if not diffs:
            section.refusals.append(Refusal(task, x.label, y.label, "no per-problem outcomes in common"))
        section.comparisons += diffs
        plans = plan_diff(task, x, y)
        if plans is not None:
            section.plan_diffs.append(plans)
    return section


def missing_samples(runs: list[Run]) -> list[str]:
    """A sentence per run and task whose samples file is gone: its numbers show, but nothing paired does."""
    out = []
    for r in runs:
        for t in r.tasks:
            file = r.path / f"samples_{t.replace('/', '_')}.jsonl" if r.path else None
            if file is None or not file.exists():
                out.append(f"run {r.run_id} has no samples file for {t} ({file}): paired comparisons and "
                           f"per-problem drill-down with it are unavailable for {t}; its results.json numbers "
                           "are shown")
    return out


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _pooled(pools: dict[str, list[str]], runs: list[Run], systems: list[System], tasks: list[str], **kwargs):
    """The pooled comparison of the two --pool groups on every task all their runs have."""
    if not pools:
        return []
    by_path = {run.path.resolve(): s for s in systems if not s.executor_alone for run in s.runs.values()}

    def pairs(dirs: list[str]) -> list[System]:
        missing = [d for d in dirs if Path(d).resolve() not in by_path]
        if missing:
            raise DataError(f"--pool runs without a planner-executor pair (no `full` condition): {', '.join(missing)}",
                            "pool runs of trained planners, evaluated with --conditions full,none[,masked]")
        return [by_path[Path(d).resolve()] for d in dirs]

    (a_label, a_dirs), (b_label, b_dirs) = pools.items()
    a, b = pairs(a_dirs), pairs(b_dirs)
    return [d for t in tasks if all(t in s.runs for s in a + b) for d in pooled_diffs(t, a_label, a, b_label, b, **kwargs)]


def build_report(run_dirs: list[str | Path], out: str | Path, *, strict: bool = False, alpha: float = 0.05,
                 confidence: float = 0.95, n_resamples: int = 10000, seed: int = 0,
                 title: str | None = None, figures_too: bool = True, pools: dict[str, list[str]] | None = None) -> Report:
    """Read the runs, check comparability, draw the figures and write report.md and report.html into `out`.
    `pools` ({label: run dirs}, two groups) adds their comparison pooled over seeds; their runs join the report."""
    pools = pools or {}
    run_dirs = list(dict.fromkeys([*run_dirs, *(d for dirs in pools.values() for d in dirs)]))
    if not run_dirs:
        raise DataError("no run directories given", "pass one or more run directories: tl-eval report runs/A runs/B --out DIR")
    runs = load_runs(run_dirs)
    warnings = missing_samples(runs)
    issues = all_issues(runs)
    if strict and issues:
        raise DataError("runs are not comparable:\n  " + "\n  ".join(i.sentence() for i in issues),
                        "re-run them with the same problems, executor, sampling and grader, or drop --strict")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    systems = build_systems(runs)
    tasks = list(dict.fromkeys(t for r in runs for t in r.tasks))
    sections = [task_section(t, systems, issues, alpha=alpha, confidence=confidence, n_resamples=n_resamples,
                             seed=seed) for t in tasks]
    pooled = _pooled(pools, runs, systems, tasks, alpha=alpha, confidence=confidence, n_resamples=n_resamples,
                     seed=seed)
    fig_dir = out / "figures"
    drawers = (figures.pass_at_1, figures.uplift_forest, figures.early_answering, figures.accuracy_by_condition,
               figures.outcome_grid) if figures_too else ()
    figs = [f for f in (draw(systems, tasks, fig_dir) for draw in drawers) if f is not None]
    context = {
        "title": title or "tl-eval comparison: " + ", ".join(r.label for r in runs),
        "runs": runs, "systems": systems, "sections": sections, "issues": issues, "figures": figs,
        "faith_headers": [h for _, h, _ in FAITH], "cost_headers": [h for _, h, _ in COST],
        "alpha": alpha, "confidence": confidence, "n_resamples": n_resamples, "seed": seed,
        "images": {f.name: _data_uri(f.png) for f in figs}, "warnings": warnings, "pooled": pooled,
    }
    md, html = out / "report.md", out / "report.html"
    md.write_text(render("report.md.jinja", **context))
    html.write_text(render("report.html.jinja", **context))
    return Report(out, md, html, runs, systems, sections, issues, figs, warnings, pooled)
