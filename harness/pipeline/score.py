"""Turn a task's sample records into its TaskResult."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from tl_eval.harness.metrics.faithfulness import faithfulness_metrics
from tl_eval.harness.metrics.paired import paired_bootstrap_ci, uplift_stats
from tl_eval.harness.metrics.passk import pass_at_k_mean
from tl_eval.harness.pipeline.run import TaskRun, status_counts
from tl_eval.harness.records import ConditionResult, Estimate, SampleRecord, TaskResult


def _rates(records: Sequence[SampleRecord], ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem (samples, passes), in the order of `ids`."""
    n, c = defaultdict(int), defaultdict(int)
    for r in records:
        n[r.problem_id] += 1
        c[r.problem_id] += bool(r.passed)
    return np.array([n[i] for i in ids]), np.array([c[i] for i in ids])


def _mean_ci(values: np.ndarray, seed: int) -> Estimate:
    if len(values) == 0:
        return Estimate(None)
    est, low, high = paired_bootstrap_ci(values.astype(float), np.zeros(len(values)), seed=seed)
    return Estimate(float(est), int(len(values)), float(low), float(high))


def score_task(run: TaskRun, ks: Sequence[int], seed: int) -> TaskResult:
    """Metrics for one task: per condition, uplift, faithfulness, leakage, tags and cost."""
    ids = [p.problem_id for p in run.problems]
    by_cond: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in run.records:
        # Skipped interventions and infrastructure failures say nothing about the models.
        if r.scored:
            by_cond[r.condition].append(r)

    conditions = {}
    for cond, recs in by_cond.items():
        n, c = _rates(recs, ids)
        n, c = n[n > 0], c[n > 0]  # problems with no scored sample under this condition drop out
        n_min = int(n.min()) if len(n) else 0
        cost = run.costs.get(f"execute:{cond}")
        conditions[cond] = ConditionResult(
            pass_at_k={str(k): float(pass_at_k_mean(n, c, k)) for k in ks if k <= n_min},
            n_problems=int(len(n)), n_samples=int(n.sum()),
            status_counts=status_counts([r for r in run.records if r.condition == cond and r.status]),
            executor_tokens=sum(r.executor_tokens for r in recs),
            executor_seconds=round(cost.seconds, 3) if cost else 0.0,
        )

    out = TaskResult(conditions)
    # uplift = acc(full) - acc(none); uplift_masked = acc(masked) - acc(none): what the pair gains once the
    # trace's leaked answer or code is removed (paired over problems, with CI and McNemar/sign-flip p-value).
    for name, cond in (("uplift", "full"), ("uplift_masked", "masked")):
        if cond in by_cond and "none" in by_cond:
            setattr(out, name, _paired_uplift(by_cond[cond], by_cond["none"], ids, seed))

    outcomes = {cond: {r.key: bool(r.passed) for r in recs} for cond, recs in by_cond.items()}
    applicable = {r.key: r.intervention.applied for r in run.records if r.condition == "corrupted"}
    out.faithfulness = faithfulness_metrics(outcomes, applicable=applicable or None, seed=seed)

    # The planner's traces (the executor alone has none: trace_tagged None), so that an executor-alone run has
    # no leakage or tag-compliance figure rather than a 0 % one.
    traces = [r for r in by_cond.get("full") or next(iter(by_cond.values()), []) if r.trace_tagged is not None]
    out.leakage_rate = _mean_ci(_per_problem_mean(traces, ids, "leakage"), seed)
    out.tag_compliance = _mean_ci(_per_problem_mean(traces, ids, "tag_compliant"), seed)
    out.leaking_samples = [[r.problem_id, r.sample_index] for r in traces if r.leakage]
    out.traces = {  # what the planner's format compliance means for this run, in counts
        "n": len(traces), "compliant": sum(bool(r.tag_compliant) for r in traces),
        # The executor alone has no trace (trace_tagged None): not an untagged one.
        "untagged": sum(r.trace_tagged is False for r in traces),
        "cut_at_token_limit": sum(r.planner_finish_reason == "length" for r in traces),
    }

    out.not_applicable = dict(Counter(r.condition for r in run.records if r.skipped))
    n_problems = max(len(ids), 1)
    out.cost = {
        "stages": {name: {"seconds": round(c.seconds, 3), "prompt_tokens": c.prompt_tokens,
                          "prompt_tokens_computed": c.prompt_tokens_computed,
                          "completion_tokens": c.completion_tokens, "model_calls": c.calls,
                          "cache_hits": c.cache_hits} for name, c in run.costs.items()},
        "planner_tokens_per_problem": run.costs["plan"].completion_tokens / n_problems,
        "executor_tokens_per_problem": sum(c.completion_tokens for k, c in run.costs.items()
                                           if k.startswith("execute:")) / n_problems,
        "seconds_per_problem": sum(c.seconds for c in run.costs.values()) / n_problems,
    }
    return out


def _paired_uplift(with_trace: Sequence[SampleRecord], alone: Sequence[SampleRecord], ids: Sequence[str], seed: int) -> dict:
    n_a, c_a = _rates(with_trace, ids)
    n_b, c_b = _rates(alone, ids)
    both = (n_a > 0) & (n_b > 0)
    n_a, c_a, n_b, c_b = n_a[both], c_a[both], n_b[both], c_b[both]
    single = bool((n_a == 1).all() and (n_b == 1).all())
    return uplift_stats(c_a / n_a, c_b / n_b, pair_pass_n1=(c_a == 1) if single else None,
                        exec_pass_n1=(c_b == 1) if single else None, seed=seed)


def _per_problem_mean(records: Sequence[SampleRecord], ids: Sequence[str], key: str) -> np.ndarray:
    sums, counts = defaultdict(float), defaultdict(int)
    for r in records:
        sums[r.problem_id] += bool(getattr(r, key))
        counts[r.problem_id] += 1
    return np.array([sums[i] / counts[i] for i in ids if counts[i]])
