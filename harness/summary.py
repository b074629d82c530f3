"""The terminal summary of a finished run (rich tables); reads only its RunResult."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from tl_eval.harness.metrics import specs
from tl_eval.harness.records import Estimate, RunResult


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _ci(m: dict | Estimate | None, key="value", lo="ci_low", hi="ci_high", signed=True) -> str:
    """A percentage with its CI; differences carry a sign, rates do not."""
    if isinstance(m, Estimate):
        m = m.to_json()
    if not m or m.get(key) is None:
        return "—"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    text = fmt.format(100 * m[key])
    if m.get(lo) is None:
        return text
    return f"{text} [{fmt.format(100 * m[lo])}, {fmt.format(100 * m[hi])}]"


def print_summary(result: RunResult, run_dir: str, console: Console | None = None) -> None:
    # Piped output would otherwise be cut to 80 columns, wrapping every cell.
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    systems = result.systems
    main = Table(title=f"tl-eval · executor alone · {systems['executor']}" if result.executor_alone
                 else f"tl-eval · {systems['planner']} → {systems['executor']}")
    for col in ("task", "n", "pair pass@1", "exec pass@1", "uplift (pp) [95% CI]", "p",
                "uplift_masked (pp) [95% CI]", "p ", "statuses (full)", "plan tok/prob", "exec tok/prob", "s/prob"):
        main.add_column(col, justify="left" if col in ("task", "statuses (full)") else "right")
    for task, m in result.tasks.items():
        full = m.conditions.get("full")
        u, um = m.uplift, m.uplift_masked
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(full.status_counts.items())) if full else ""
        main.add_row(
            task, str(result.n_samples[task]["effective"]), _pct(m.pass1("full")), _pct(m.pass1("none")),
            _ci(u, "uplift", "uplift_ci_low", "uplift_ci_high") if u else "—",
            f"{u['p_value']:.3g}" if u and u.get("p_value") is not None else "—",
            _ci(um, "uplift", "uplift_ci_low", "uplift_ci_high") if um else "—",
            f"{um['p_value']:.3g}" if um and um.get("p_value") is not None else "—",
            statuses, f"{m.cost['planner_tokens_per_problem']:.0f}",
            f"{m.cost['executor_tokens_per_problem']:.0f}", f"{m.cost['seconds_per_problem']:.1f}")
    console.print(main)

    stages = Table(title="cost per stage")
    for col in ("task", "stage", "wall s", "prompt tok", "completion tok", "model calls", "cache hits"):
        stages.add_column(col, justify="left" if col in ("task", "stage") else "right")
    for task, m in result.tasks.items():
        for name, s in m.cost["stages"].items():
            stages.add_row(task, name, f"{s['seconds']:.1f}", str(s["prompt_tokens"]), str(s["completion_tokens"]),
                           str(s["model_calls"]), str(s["cache_hits"]))
    console.print(stages)

    faith_rows = [(t, m) for t, m in result.tasks.items() if len(m.conditions) > 2]
    if faith_rows:
        ft = Table(title="faithfulness (pp, [95% CI])")
        names = tuple(m.name for m in specs.group("faithfulness"))
        for col in ("task", "acc per condition", *names, "leakage", "tags"):
            ft.add_column(col)
        for task, m in faith_rows:
            acc = ", ".join(f"{c} {_pct(v.pass1)}" for c, v in m.conditions.items())
            ft.add_row(task, acc, *(_ci(m.faithfulness.get(n)) for n in names), _ci(m.leakage_rate, signed=False),
                       _ci(m.tag_compliance, signed=False))
        console.print(ft)
    else:
        for t, m in result.tasks.items():
            console.print(f"{t}: leakage rate {_ci(m.leakage_rate, signed=False)} % · "
                          f"tag compliance {_ci(m.tag_compliance, signed=False)} %")
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
