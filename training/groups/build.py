"""Build TraceLift-Groups rows from seed problems: a reference trace and a bank of labelled negatives."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tl_eval.harness.models.base import Generator
from tl_eval.harness.perturb import ALL_KINDS, perturb
from tl_eval.training.groups.labels import negative_rubric, positive_rubric
from tl_eval.training.groups.schema import GroupRow, Trace
from tl_eval.training.groups.seeds import Seed, load_seeds
from tl_eval.training.groups.writer import write_plans, write_wrong_strategies


@dataclass
class BuildReport:
    rows: int = 0
    skipped: int = 0  # seeds whose reference trace had no applicable perturbation
    per_kind: Counter = field(default_factory=Counter)  # negatives made, by kind
    not_applicable: Counter = field(default_factory=Counter)  # seeds where a kind did not apply

    def summary(self) -> str:
        kinds = ", ".join(f"{k}={self.per_kind[k]}" for k in (*ALL_KINDS, "wrong_strategy") if k in self.per_kind)
        return f"{self.rows} groups, {sum(self.per_kind.values())} negatives ({kinds}); {self.skipped} seeds skipped"


def _seed_rng(seed: int, problem_id: str, kind: str) -> random.Random:
    # Per (problem, kind): a row does not change when --limit or the kind list changes.
    return random.Random(f"{seed}:{problem_id}:{kind}")


def negatives_for(reference: str, seed: Seed, task_type: str, kinds: tuple[str, ...], rng_seed: int,
                  report: BuildReport) -> list[Trace]:
    """One negative per applicable kind, each a single localized edit of the reference trace."""
    out = []
    for kind in kinds:
        p = perturb(reference, kind, _seed_rng(rng_seed, seed.problem_id, kind), answer=seed.answer)
        if p is None or p.text.strip() == reference.strip():
            report.not_applicable[kind] += 1
            continue
        out.append(Trace(p.text, negative_rubric(kind, task_type), kind,
                         {"span": list(p.span), "original": p.original, "replacement": p.replacement}))
        report.per_kind[kind] += 1
    return out


def build_groups(task: str, split: str = "train", *, data_dir: str | Path | None = None, limit: int | None = None,
                 seed: int = 0, writer: Generator | None = None,
                 kinds: tuple[str, ...] = ALL_KINDS) -> tuple[list[GroupRow], BuildReport]:
    """Rows for `task` (gsm8k or mbpp) and a count of negatives per kind."""
    seeds = load_seeds(task, split, data_dir)
    if limit is not None:
        seeds = seeds[:limit]
    # The positive trace is the task's reference plan (the same rule as `--planner reference`); for code a
    # --writer may phrase it instead.
    if writer is not None and task != "gsm8k":
        refs = write_plans(writer, [s.problem for s in seeds], [s.reference_solution for s in seeds], seed=seed)
        # A writer that returns nothing usable for a seed falls back to the rule, so no seed is lost to it.
        refs = [r if r.strip() else s.reference_plan for r, s in zip(refs, seeds)]
    else:
        refs = [s.reference_plan for s in seeds]
    wrong = (write_wrong_strategies(writer, [s.problem for s in seeds], refs, seed=seed)
             if writer is not None else [""] * len(seeds))
    report, rows = BuildReport(), []
    for s, ref, bad in zip(seeds, refs, wrong):
        tt = s.task_type
        negs = negatives_for(ref, s, tt, kinds, seed, report)
        if bad.strip() and bad.strip() != ref.strip():
            negs.append(Trace(bad.strip(), negative_rubric("wrong_strategy", tt), "wrong_strategy"))
            report.per_kind["wrong_strategy"] += 1
        if not negs:
            report.skipped += 1
            continue
        rows.append(GroupRow(s.problem_id, s.source, tt, s.problem, s.reference_solution,
                             [Trace(ref, positive_rubric(tt))], negs))
    report.rows = len(rows)
    return rows, report
