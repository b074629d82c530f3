"""The terminal summary of a finished run (rich tables); reads only its RunResult."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from tl_eval.harness.metrics import specs
from tl_eval.harness.records import RunResult


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _cell(spec: specs.MetricSpec, metrics: dict) -> str:
    """A metric as the terminal shows it: rates in %, differences in signed points, each with its CI."""
    value, lo, hi = specs.read(spec, metrics)
    if value is None:
        return "—"
    if spec.kind == "p":
        return f"{value:.3g}"
    if spec.kind in ("count", "sec"):
        return f"{value:.0f}" if spec.kind == "count" else f"{value:.1f}"
    fmt = "{:+.1f}" if spec.kind == "pp" else "{:.1f}"
    text = fmt.format(100 * value)
    return text if lo is None else f"{text} [{fmt.format(100 * lo)}, {fmt.format(100 * hi)}]"


def print_summary(result: RunResult, run_dir: str, console: Console | None = None) -> None:
    # Piped output would otherwise be cut to 80 columns, wrapping every cell.
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    systems = result.systems
    main = Table(title=f"tl-eval · executor alone · {systems['executor']}" if result.executor_alone
                 else f"tl-eval · {systems['planner']} → {systems['executor']}")
    headline, cost = specs.group("headline"), specs.group("cost")
    for col in ("task", "n", *(f"{m.label} [95% CI]" if m.ci else m.label for m in headline), "statuses (full)",
                *(m.label for m in cost)):
        main.add_column(col, justify="left" if col in ("task", "statuses (full)") else "right")
    for task, m in result.tasks.items():
        full, doc = m.conditions.get("full"), m.to_json()
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(full.status_counts.items())) if full else ""
        main.add_row(task, str(result.n_samples[task]["effective"]), *(_cell(s, doc) for s in headline), statuses,
                     *(_cell(s, doc) for s in cost))
    console.print(main)

    stages = Table(title="cost per stage")
    for col in ("task", "stage", "wall s", "prompt tok", "computed", "completion tok", "model calls", "cache hits"):
        stages.add_column(col, justify="left" if col in ("task", "stage") else "right")
    for task, m in result.tasks.items():
        for name, s in m.cost["stages"].items():
            # `computed`: the prompt tokens the model really prefilled (not cached, not a reused prefix).
            stages.add_row(task, name, f"{s['seconds']:.1f}", str(s["prompt_tokens"]),
                           str(s.get("prompt_tokens_computed", "—")), str(s["completion_tokens"]),
                           str(s["model_calls"]), str(s["cache_hits"]))
    console.print(stages)

    faith_rows = [(t, m) for t, m in result.tasks.items() if len(m.conditions) > 2]
    if faith_rows:
        ft = Table(title="faithfulness (%, pp, [95% CI])")
        shown = (*specs.group("faithfulness"), *specs.group("trace"))
        for col in ("task", "acc per condition", *(m.name for m in shown)):
            ft.add_column(col)
        for task, m in faith_rows:
            acc = ", ".join(f"{c} {_pct(v.pass1)}" for c, v in m.conditions.items())
            ft.add_row(task, acc, *(_cell(s, m.to_json()) for s in shown))
        console.print(ft)
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
