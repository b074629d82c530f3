"""One spec per reported metric: its name, label, kind, direction, and where its value and CI live in results.json.

The run summary, the report, the leaderboard (terminal and HTML) and the lm-eval export read these; adding a
metric is the code that computes it plus one spec here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """`path` is under `metrics/<task>/` in results.json; `ci` are the paths of the CI bounds (None: no CI).

    kind: `pct` a rate in [0, 1] shown as %, `pp` a difference of rates shown in points, `p` a p-value,
    `count` a per-problem count, `sec` seconds. `higher_is_better` is None where neither way is better.
    """

    name: str
    label: str
    kind: str
    higher_is_better: bool | None
    group: str  # headline | faithfulness | trace | cost
    path: tuple[str, ...]
    ci: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    help: str = ""


def _with_ci(name: str, label: str, kind: str, better: bool | None, group: str, base: tuple[str, ...],
             help: str) -> MetricSpec:
    return MetricSpec(name, label, kind, better, group, (*base, "value"),
                      ((*base, "ci_low"), (*base, "ci_high")), help)


def _uplift(name: str, label: str, help: str) -> tuple[MetricSpec, MetricSpec]:
    return (MetricSpec(name, f"{label} pp [CI]", "pp", True, "headline", (name, "uplift"),
                       ((name, "uplift_ci_low"), (name, "uplift_ci_high")), help),
            MetricSpec(f"{name}_p", "p", "p", False, "headline", (name, "p_value"),
                       help=f"paired bootstrap p-value of {name}"))


def _faith(name: str, kind: str, better: bool | None, help: str) -> MetricSpec:
    return _with_ci(name, name.replace("_", " "), kind, better, "faithfulness", ("faithfulness", name), help)


def _pass1(name: str, condition: str, help: str) -> MetricSpec:
    # The CI is the bootstrap CI of the per-problem accuracy, which faithfulness keeps per condition.
    return MetricSpec(name, name.replace("_", " "), "pct", True, "headline", ("conditions", condition, "pass@k", "1"),
                      (("faithfulness", "acc", condition, "ci_low"), ("faithfulness", "acc", condition, "ci_high")),
                      help)


METRICS: tuple[MetricSpec, ...] = (
    _pass1("pair_pass@1", "full", "pass@1 of the pair: the executor given the planner's trace"),
    _pass1("exec_pass@1", "none", "pass@1 of the executor alone"),
    *_uplift("uplift", "uplift", "acc(full) − acc(none): what the trace buys the executor"),
    *_uplift("uplift_masked", "uplift_masked", "acc(masked) − acc(none): the uplift a leaked answer cannot buy"),
    _faith("corruption_sensitivity", "pct", True, "share of full's successes lost when the trace is corrupted"),
    _faith("early_answering_aoc", "pct", True, "area over the truncation curve: how much of the trace is used"),
    _faith("mismatch_drop", "pp", True, "acc(full) − acc(mismatched): a trace of another problem should not help"),
    _faith("filler_gain", "pp", False, "acc(filler) − acc(none): content-free text should not help"),
    _faith("trace_credited_success", "pct", True, "successes that need the trace's content"),
    _with_ci("leakage_rate", "leakage", "pct", False, "trace", ("leakage_rate",),
             "traces that give the answer or the code away"),
    _with_ci("tag_compliance", "tags", "pct", True, "trace", ("tag_compliance",),
             "planner turns closed with non-blank <reasoning>"),
    MetricSpec("planner_tokens_per_problem", "plan tok/prob", "count", None, "cost",
               ("cost", "planner_tokens_per_problem")),
    MetricSpec("executor_tokens_per_problem", "exec tok/prob", "count", None, "cost",
               ("cost", "executor_tokens_per_problem")),
    MetricSpec("seconds_per_problem", "s/prob", "sec", None, "cost", ("cost", "seconds_per_problem")),
)
BY_NAME = {m.name: m for m in METRICS}


def group(name: str) -> tuple[MetricSpec, ...]:
    return tuple(m for m in METRICS if m.group == name)


def lookup(metrics: dict, path: tuple[str, ...]):
    """The value at `path` in a task's metrics (results.json `metrics/<task>`), None when absent."""
    node = metrics
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read(spec: MetricSpec, metrics: dict) -> tuple[float | None, float | None, float | None]:
    """(value, ci_low, ci_high) of a spec in a task's metrics; None where absent."""
    value = lookup(metrics, spec.path)
    if value is None or spec.ci is None:
        return value, None, None
    return value, lookup(metrics, spec.ci[0]), lookup(metrics, spec.ci[1])


def higher_is_better(name: str) -> bool | None:
    """Direction of a metric name as another harness shows it (pass@k: higher; unknown names: None)."""
    if name.startswith("pass@"):
        return True
    base = name.removesuffix("_ci_low").removesuffix("_ci_high").removesuffix("_value")
    spec = BY_NAME.get(base)  # `uplift_p_value` -> `uplift_p`
    return spec.higher_is_better if spec else None
