"""`tl-eval report` and `tl-eval leaderboard` (registered through the `tl_eval.commands` entry point)."""

from __future__ import annotations

from pathlib import Path

import click

from tl_eval.harness.config import default_baselines_dir
from tl_eval.harness.errors import TLEvalError, fail


@click.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for report.md, report.html, figures/.")
@click.option("--strict", is_flag=True, help="Refuse runs that differ in problems, executor, sampling or grader.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level of the paired tests.")
@click.option("--confidence", default=0.95, show_default=True, help="Confidence level of the bootstrap CIs.")
@click.option("--n-resamples", default=10000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--title", default=None, help="Report title (default: the systems compared).")
@click.option("--no-figures", is_flag=True, help="Tables only (figures take most of the time).")
@click.option("--pool", "pools", multiple=True, metavar="LABEL=DIR[,DIR...]",
              help="A group of runs pooled over seeds (e.g. the TraceLift checkpoints of three training seeds); give "
                   "two groups to get their difference in pass@1, uplift and uplift_masked with a hierarchical "
                   "bootstrap over seeds and problems. Their runs join the report.")
def report(run_dirs, out, strict, alpha, confidence, n_resamples, seed, title, no_figures, pools):
    """Compare run directories: report.md and a self-contained report.html with figures (PNG and SVG)."""
    from tl_eval.reports.pooled import parse_pools
    from tl_eval.reports.report import build_report

    try:
        rep = build_report(list(run_dirs), out, strict=strict, alpha=alpha, confidence=confidence,
                           n_resamples=n_resamples, seed=seed, title=title, figures_too=not no_figures,
                           pools=parse_pools(list(pools)))
    except TLEvalError as e:
        fail(e)
    for issue in rep.issues:
        click.echo(f"{'refused' if issue.refused else 'flagged'}: {issue.sentence()}", err=True)
    for warning in rep.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    for d in rep.pooled:
        click.echo(d.sentence())
    click.echo(f"wrote {rep.markdown} and {rep.html} ({len(rep.figures)} figures in {rep.out / 'figures'})")


@click.command("leaderboard")
@click.option("--runs", "runs", multiple=True, type=click.Path(path_type=Path),
              help="A run directory or a folder of them; repeatable (default: runs/ when it exists).")
@click.option("--baselines", type=click.Path(path_type=Path), default=None,
              help="Folder of recorded baseline entries (default: $TL_EVAL_BASELINES, else the repository's "
                   "baselines/).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write leaderboard.json and the static site here; without it, print the table.")
@click.option("--task", default=None, help="Only this task in the terminal table.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level for shared ranks.")
@click.option("--n-resamples", default=2000, show_default=True, help="Bootstrap resamples for paired CIs.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
def leaderboard(runs, baselines, out, task, alpha, n_resamples, seed):
    """Rank systems with CIs and shared ranks: a static site (index.html, per-system pages) or a terminal table."""
    from rich.console import Console

    from tl_eval.reports.leaderboard import build_leaderboard, terminal_table

    roots = list(runs) or ([Path("runs")] if Path("runs").is_dir() else [])
    if baselines is None and default_baselines_dir().is_dir():
        baselines = default_baselines_dir()
    if not roots and baselines is None:
        fail(TLEvalError("no runs to show", "pass --runs DIR (a run directory or a folder of them)"))
    try:
        board = build_leaderboard(roots, out, baselines, alpha=alpha, n_resamples=n_resamples, seed=seed)
        tables = terminal_table(board, task) if out is None else []
    except TLEvalError as e:
        fail(e)
    for skip in board["skipped"]:
        click.secho(f"warning: skipped {skip['path']}: {skip['reason']}", fg="yellow", err=True)
    if out is None:
        # Piped output would wrap at 80 columns and squeeze the table unreadably.
        console = Console() if Console().is_terminal else Console(width=260)  # piped: room for every column
        for t in tables:
            console.print(t)
        click.echo(board["rank_rule"])
    else:
        click.echo(f"wrote {Path(out) / 'index.html'} and {Path(out) / 'leaderboard.json'} "
                   f"({len(board['systems'])} systems)")


COMMANDS = [report, leaderboard]
