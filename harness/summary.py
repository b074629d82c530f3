"""The terminal summary of a finished run (rich tables); reads only its RunResult."""

from __future__ import annotations

import sys

from rich import box
from rich.console import Console
from rich.table import Table

from tl_eval.harness.metrics import specs
from tl_eval.harness.records import RunResult


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _cell(spec: specs.MetricSpec, metrics: dict, narrow: bool = False) -> str:
    """A metric as the terminal shows it: rates in %, differences in signed points, each with its CI (`narrow`:
    the CI's bounds in whole points, without spaces, so that a cell fits beside its neighbours on one line)."""
    value, lo, hi = specs.read(spec, metrics)
    if value is None:
        return "—"
    if spec.kind == "p":
        return f"{value:.3g}"
    if spec.kind in ("count", "sec"):
        return f"{value:.0f}" if spec.kind == "count" else f"{value:.1f}"
    fmt = "{:+.1f}" if spec.kind == "pp" else "{:.1f}"
    text = fmt.format(100 * value)
    if lo is None:
        return text
    if narrow:
        bound = "{:+.0f}" if spec.kind == "pp" else "{:.0f}"
        return f"{text} [{bound.format(100 * lo)},{bound.format(100 * hi)}]"
    return f"{text} [{fmt.format(100 * lo)}, {fmt.format(100 * hi)}]"


def print_summary(result: RunResult, run_dir: str, console: Console | None = None) -> None:
    # Piped output would otherwise be cut to 80 columns, wrapping every cell.
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    systems = result.systems
    # One line per task at 100 columns: CIs beside the figure in whole points, one space between columns,
    # statuses and cost on their own line below (a status list or a cost column would wrap every CI).
    main = Table(title=f"tl-eval · executor alone · {systems['executor']}" if result.executor_alone
                 else f"tl-eval · {systems['planner']} → {systems['executor']}", box=box.SIMPLE_HEAD,
                 padding=(0, 1), caption="pass@1 in %, uplift in pp, [95 % CI]; p: paired test", caption_justify="left")
    headline, cost = specs.group("headline"), specs.group("cost")
    main.add_column("task", justify="left", overflow="fold")
    main.add_column("n", justify="right", no_wrap=True)
    for m in headline:
        main.add_column(m.label.replace(" [CI]", ""), justify="right", no_wrap=True)
    lines = []
    for task, m in result.tasks.items():
        full, doc = m.conditions.get("full") or m.conditions.get("none"), m.to_json()
        main.add_row(task, str(result.n_samples[task]["effective"]), *(_cell(s, doc, narrow=True) for s in headline))
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(full.status_counts.items())) if full else "—"
        costs = " · ".join(f"{_cell(s, doc)} {s.label}" for s in cost)
        lines.append(f"{task}: statuses ({'full' if m.conditions.get('full') else 'none'}) {statuses} · {costs}")
    console.print(main)
    for line in lines:
        console.print(line, soft_wrap=False, overflow="fold")

    stages = Table(title="cost per stage (tokens)", box=box.SIMPLE_HEAD, padding=(0, 1))
    names = [(t, n) for t, m in result.tasks.items() for n in m.cost["stages"]]
    for col in ("task", "stage", "wall s", "prompt", "computed", "completion", "calls", "cache hits"):
        widest = max((len(t if col == "task" else n) for t, n in names), default=0) if col in ("task", "stage") else 0
        stages.add_column(col, justify="left" if col in ("task", "stage") else "right", no_wrap=True,
                          min_width=widest or None)
    for task, m in result.tasks.items():
        for name, s in m.cost["stages"].items():
            # `computed`: the prompt tokens the model really prefilled (not cached, not a reused prefix).
            stages.add_row(task, name, f"{s['seconds']:.1f}", str(s["prompt_tokens"]),
                           str(s.get("prompt_tokens_computed", "—")), str(s["completion_tokens"]),
                           str(s["model_calls"]), str(s["cache_hits"]))
    console.print(stages)

    faith_rows = [(t, m) for t, m in result.tasks.items() if len(m.conditions) > 2]
    if faith_rows:
        # One column per task, one row per metric: a column per metric would not fit 100 columns.
        ft = Table(title="faithfulness (%, pp, [95 % CI])", box=box.SIMPLE_HEAD, padding=(0, 1))
        shown = (*specs.group("faithfulness"), *specs.group("trace"))
        ft.add_column("metric", justify="left", no_wrap=True)
        for task, _ in faith_rows:
            ft.add_column(task, justify="right", no_wrap=True)
        for spec in shown:
            ft.add_row(spec.label, *(_cell(spec, m.to_json(), narrow=True) for _, m in faith_rows))
        console.print(ft)
        for task, m in faith_rows:
            console.print(f"{task}: pass@1 per condition: " + ", ".join(f"{c} {_pct(v.pass1)}"
                                                                      for c, v in m.conditions.items()))
    else:
        for t, m in result.tasks.items():
            console.print(f"{t}: " + " · ".join(f"{s.name.replace('_', ' ')} {_cell(s, m.to_json())} %"
                                               for s in specs.group("trace")))
    for t, m in result.tasks.items():
        tr = m.traces
        if tr and tr["n"] and tr["compliant"] < tr["n"] and not result.executor_alone:
            what = []
            if tr["untagged"]:
                what.append(f"{tr['untagged']} had no <reasoning> tag: the whole completion was used as the trace")
            if tr["cut_at_token_limit"]:
                what.append(f"{tr['cut_at_token_limit']} ran out of planner tokens before closing the trace: "
                            "the text up to the limit was used")
            console.print(f"{t}: {tr['n'] - tr['compliant']} of {tr['n']} traces are not format-compliant"
                          + (" (" + "; ".join(what) + ")" if what else ""))
    for t, m in result.tasks.items():
        if m.rm:
            scores = ", ".join(f"{c} {v:.3f}" for c, v in m.rm["mean_score"].items())
            console.print(f"{t}: mean RM score {scores} · rm × uplift "
                          f"{m.rm.get('rm_uplift', float('nan')):+.3f}")
    sandbox = result.config.get("sandbox")
    if sandbox:
        gaps = [w.split(": ", 1)[1] for w in sandbox.get("warnings", []) if w.startswith("sandbox isolation: ")]
        console.print(f"sandbox: tier {sandbox['tier']} · " + ("; ".join(gaps) if gaps else
                      "every isolation promise of docs/sandbox.md holds on this machine"))
    console.print(f"run directory: {run_dir}")
