"""One evaluation: plan -> execute (per condition) -> verify -> score, every generation through the cache."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from tl_eval.harness.config import RunConfig
from tl_eval.harness.models.base import Generator
from tl_eval.harness.pipeline.cache import Cache, CachedGenerator
from tl_eval.harness.pipeline.judge import executor_request, judge
from tl_eval.harness.pipeline.interventions import (
    Condition,
    apply_condition,
    derangement,
    paraphrase_messages,
)
from tl_eval.harness.pipeline.trace import Trace, extract_trace, planner_turn, read_turn
from tl_eval.harness.task import Task
from tl_eval.harness.records import Intervention, SampleRecord
from tl_eval.harness.types import Generation, GenerationRequest, Problem, SamplingParams


@dataclass
class StageCost:
    """Tokens, wall time and cache traffic of one stage."""

    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens_computed: int = 0  # of the model calls' prompt tokens, those not reused from the backend's cache

    def add(self, gens: Sequence[Generation]) -> None:
        for g in gens:
            self.prompt_tokens += g.prompt_tokens
            self.completion_tokens += g.completion_tokens
            if not g.cached:
                self.prompt_tokens_computed += (g.prompt_tokens if g.prompt_tokens_computed is None
                                                else g.prompt_tokens_computed)
            self.calls += 0 if g.cached else 1
            self.cache_hits += 1 if g.cached else 0


@dataclass
class TaskRun:
    """Everything computed for one task: the sample records and the costs; scoring reads only these."""

    task: Task
    problems: list[Problem]
    records: list[SampleRecord]
    costs: dict[str, StageCost] = field(default_factory=dict)


def _progress(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="gen", dynamic_ncols=True, disable=not enabled, leave=True)


def _generate(gen: CachedGenerator, requests: list[GenerationRequest], desc: str, cost: StageCost,
              show: bool) -> list[Generation]:
    start = time.perf_counter()
    with _progress(len(requests), desc, show) as bar:
        outs = gen.generate(requests, on_done=bar.update)
    cost.seconds += time.perf_counter() - start
    cost.add(outs)
    return outs


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]


class Evaluation:
    """Runs one config over its tasks with already-loaded generators."""

    def __init__(self, config: RunConfig, planner: Generator | None, executor: Generator, cache: Cache,
                 conditions: Sequence[Condition], paraphraser: Generator | None = None,
                 show_progress: bool = True, log: Callable[[str], None] = print, reference_plans: bool = False):
        self.config = config
        self.reference_plans = reference_plans  # --planner reference: traces are the task's reference plans
        self.planner = CachedGenerator(planner, cache) if planner is not None else None
        self.executor = CachedGenerator(executor, cache)
        self.paraphraser = CachedGenerator(paraphraser, cache) if paraphraser else None
        self.cache = cache
        self.conditions = list(conditions)
        self.show = show_progress
        self.log = log

    # -- stages ---------------------------------------------------------------------------------

    def plan(self, task: Task, problems: list[Problem], cost: StageCost) -> dict[tuple[str, int], tuple[Generation, Trace]]:
        cfg = self.config
        keys, requests = [], []
        for p in problems:
            turn = planner_turn(task, p, cfg.sampling)
            for i in range(cfg.n_samples):
                keys.append((p.problem_id, i))
                requests.append(GenerationRequest(turn.messages, turn.sampling, i))
        outs = _generate(self.planner, requests, f"{task.name}: plan", cost, self.show)
        out = {}
        for k, g in zip(keys, outs):
            turn, trace = read_turn(g.text, g.finish_reason, cfg.planner_format)
            out[k] = (dataclasses.replace(g, text=turn), trace)
        return out

    def plan_reference(self, task: Task, problems: list[Problem]) -> dict[tuple[str, int], tuple[Generation, Trace]]:
        """The task's reference plan as every sample's trace; it is a closed, compliant turn by construction."""
        from tl_eval.harness.planners import reference_generation

        out = {}
        for p in problems:
            g = reference_generation(task, p)
            for i in range(self.config.n_samples):
                out[(p.problem_id, i)] = (g, Trace(g.text, tagged=True, closed=True, compliant=bool(g.text.strip())))
        return out

    def paraphrase(self, task: Task, traces: dict[tuple[str, int], tuple[Generation, Trace]],
                   cost: StageCost) -> dict[tuple[str, int], str]:
        if self.paraphraser is None:
            return {}
        keys = list(traces)
        sampling = SamplingParams(0.0, 1.0, self.config.planner_max_tokens * 2, self.config.seed)
        requests = [GenerationRequest(tuple(paraphrase_messages(traces[k][1].text)), sampling, 0) for k in keys]
        outs = _generate(self.paraphraser, requests, f"{task.name}: paraphrase", cost, self.show)
        return {k: extract_trace(g.text).text for k, g in zip(keys, outs)}

    def build_records(self, task: Task, problems: list[Problem],
                      traces: dict[tuple[str, int], tuple[Generation, Trace]],
                      paraphrases: dict[tuple[str, int], str]) -> list[SampleRecord]:
        cfg = self.config
        ids = [p.problem_id for p in problems]
        partner = derangement(ids, cfg.seed) if len(ids) > 1 else {}
        records = []
        for p in problems:
            for i in range(cfg.n_samples):
                if (p.problem_id, i) not in traces:  # the executor alone: no planner, condition `none` only
                    records.append(SampleRecord(task.name, p.problem_id, i, "none"))
                    continue
                completion, trace = traces[(p.problem_id, i)]
                planned = dict(planner_output=completion.text, planner_finish_reason=completion.finish_reason,
                               planner_tokens=completion.completion_tokens, trace=trace.text,
                               trace_tagged=trace.tagged, tag_compliant=trace.compliant,
                               leakage=task.trace_leaks(p, trace.text))
                for cond in self.conditions:
                    other = partner.get(p.problem_id)
                    iv = apply_condition(
                        cond, trace.text, task=task, problem=p, seed=cfg.seed, sample_index=i,
                        mismatched_trace=traces[(other, i)][1].text if other else None,
                        paraphrase=paraphrases.get((p.problem_id, i)),
                    )
                    intervention = Intervention(iv.applied, iv.kind, list(iv.span) if iv.span else None, iv.note,
                                                iv.removed, iv.same_as_full)
                    records.append(SampleRecord(task.name, p.problem_id, i, str(cond), **planned,
                                                executor_trace=iv.trace, intervention=intervention))
        return records

    def execute(self, task: Task, problems: dict[str, Problem], records: list[SampleRecord],
                costs: dict[str, StageCost]) -> None:
        cfg = self.config
        requests = [executor_request(task, problems[r.problem_id], r.executor_trace, cfg.sampling.executor(),
                                     r.sample_index) for r in records]
        # One batch for all conditions, so backends that batch or run concurrently see every call at once.
        start = time.perf_counter()
        with _progress(len(requests), f"{task.name}: execute", self.show) as bar:
            outs = self.executor.generate(requests, on_done=bar.update)
        elapsed = time.perf_counter() - start
        fresh_tokens = sum(g.completion_tokens for g in outs if not g.cached) or 1
        for r, g in zip(records, outs):
            cost = costs.setdefault(f"execute:{r.condition}", StageCost())
            cost.add([g])
            # Wall time is shared out by generated tokens: the batch is timed as a whole.
            cost.seconds += 0.0 if g.cached else elapsed * g.completion_tokens / fresh_tokens
            r.set_generation(g)

    def verify(self, task: Task, problems: dict[str, Problem], records: list[SampleRecord], cost: StageCost) -> None:
        start = time.perf_counter()
        judged = judge(task, self.cache, [problems[r.problem_id] for r in records],
                       [r.executor_output for r in records])
        if records:
            fresh = sum(not j.cached for j in judged.outcomes)
            self.log(f"{task.name}: verifying {judged.verified} artifacts ({len(records) - fresh} cached)")
        for r, j in zip(records, judged.outcomes):
            r.set_verdict(j.artifact, _sha(j.artifact), j.verdict)
        cost.seconds += time.perf_counter() - start

    # -- driver ---------------------------------------------------------------------------------

    def run_task(self, task: Task, problems: list[Problem]) -> TaskRun:
        costs: dict[str, StageCost] = {"plan": StageCost(), "verify": StageCost()}
        if self.reference_plans:
            traces = self.plan_reference(task, problems)
        else:
            traces = self.plan(task, problems, costs["plan"]) if self.planner is not None else {}
        if any(c.name == "paraphrased" for c in self.conditions):
            costs["paraphrase"] = StageCost()
            paraphrases = self.paraphrase(task, traces, costs["paraphrase"])
        else:
            paraphrases = {}
        records = self.build_records(task, problems, traces, paraphrases)
        by_id = {p.problem_id: p for p in problems}
        # An intervention that could not be applied (no corruption fits the trace, one problem to mismatch)
        # would only repeat `full`: it is recorded but neither executed nor scored.
        # `masked` with nothing to mask is `full` by definition: it takes full's outcome, with no executor call.
        active, same_as_full = [], []
        for r in records:
            if r.intervention.applied or r.condition in ("full", "none"):
                active.append(r)
            elif r.intervention.same_as_full:
                same_as_full.append(r)
            else:
                r.skipped = "not_applicable"
        self.execute(task, by_id, active, costs)
        self.verify(task, by_id, active, costs["verify"])
        full = {r.key: r for r in active if r.condition == "full"}
        for r in same_as_full:
            r.copy_outcome(full[r.key])
        return TaskRun(task, problems, records, costs)


def status_counts(records: Sequence[SampleRecord]) -> dict[str, int]:
    return dict(Counter(r.status for r in records))
