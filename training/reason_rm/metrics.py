"""Held-out metrics of a trace scorer on groups: pair and group accuracy, total MAE, per-kind pair accuracy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from tl_eval.training.groups.schema import GroupRow
from tl_eval.training.reason_rm.samples import by_task_type

# (traces, problems, task_type) -> (scores, predicted totals or None)
ScoreFn = Callable[[Sequence[str], Sequence[str], str], tuple[list[float], list[float] | None]]


def heldout_metrics(score_fn: ScoreFn, rows: Sequence[GroupRow]) -> dict:
    """posneg_pair_acc over every (positive, negative) pair of a group, posneg_group_acc (a positive beats
    every negative), total_mae (|predicted − labelled total|), and pair accuracy per negative_kind; ties count 0.5."""
    pair_hits, n_pairs, group_hits, n_groups = 0.0, 0, 0, 0
    abs_err, n_err = 0.0, 0
    per_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for tt, sub in by_task_type([r for r in rows if r.negative_bank]).items():
        traces, problems, owners = [], [], []
        for gi, r in enumerate(sub):
            for t in r.positive_pool + r.negative_bank:
                traces.append(t.reasoning)
                problems.append(r.problem)
                owners.append((gi, t))
        if not traces:
            continue
        scores, totals = score_fn(traces, problems, tt)
        by_group: dict[int, tuple[list[float], list[tuple[float, str]]]] = defaultdict(lambda: ([], []))
        for k, (gi, t) in enumerate(owners):
            if t.negative_kind is None:
                by_group[gi][0].append(scores[k])
            else:
                by_group[gi][1].append((scores[k], t.negative_kind))
            if totals is not None:
                abs_err += abs(totals[k] - t.rubric["total"])
                n_err += 1
        for pos, neg in by_group.values():
            for sn, kind in neg:
                for sp in pos:
                    hit = 1.0 if sp > sn else 0.5 if sp == sn else 0.0
                    pair_hits += hit
                    n_pairs += 1
                    per_kind[kind][0] += hit
                    per_kind[kind][1] += 1
            group_hits += int(max(pos) > max(s for s, _ in neg))
            n_groups += 1
    return {
        "posneg_pair_acc": pair_hits / n_pairs if n_pairs else None,
        "posneg_pair_count": n_pairs,
        "posneg_group_acc": group_hits / n_groups if n_groups else None,
        "posneg_group_count": n_groups,
        "total_mae": abs_err / n_err if n_err else None,
        "per_kind_pair_acc": {k: {"acc": h / n, "count": n} for k, (h, n) in sorted(per_kind.items())},
    }


def length_score_fn(traces, problems, task_type):
    """A baseline that needs no training: longer traces score higher."""
    return [float(len(t)) for t in traces], None
