"""The frozen executor as the trainer sees it: batched calls through the shared cache, verified, and counted.

Requests and verdicts come from the evaluation's own execute-and-verify step (`harness.pipeline.judge`), and the
executor-alone prompt is `task.executor_messages(p, None)`.
So the executor-alone samples a training run computes are the evaluation's `none` condition, and vice versa,
whenever both use the same executor sampling settings and cache.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from tl_eval.harness.models.base import Generator
from tl_eval.harness.pipeline.cache import Cache, CachedGenerator
from tl_eval.harness.pipeline.judge import executor_request, judge
from tl_eval.harness.task import Task
from tl_eval.harness.types import Generation, GenerationRequest, Problem, SamplingParams, Verdict


@dataclass
class ExecutorCounters:
    """Cumulative executor traffic; `*_calls` are model calls (cache misses), `*_requests` all requests."""

    with_trace_requests: int = 0
    with_trace_calls: int = 0
    alone_requests: int = 0
    alone_calls: int = 0
    cache_hits: int = 0
    traces: int = 0  # planner completions scored
    alone_problems: int = 0  # problems whose executor-alone samples were computed or loaded

    @property
    def calls(self) -> int:
        return self.with_trace_calls + self.alone_calls

    def to_dict(self) -> dict:
        return {**asdict(self), "calls": self.calls}


@dataclass
class ExecutorOutcome:
    """One executor sample: its raw output, extracted artifact and verdict."""

    output: str
    artifact: str | None
    verdict: Verdict
    cached: bool


class ExecutorClient:
    """Runs executor(problem, trace) for K samples per trace, and executor(problem) K times per problem, once."""

    def __init__(self, task: Task, generator: Generator, cache: Cache, sampling: SamplingParams, k: int = 3):
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.task = task
        self.cache = cache
        self.generator = CachedGenerator(generator, cache)
        self.sampling = sampling
        self.k = k
        self.counters = ExecutorCounters()
        self._alone: dict[str, list[ExecutorOutcome]] = {}
        self._lock = threading.Lock()  # one batch at a time: the backends and the SQLite cache are shared

    def request(self, problem: Problem, trace: str | None, sample_index: int) -> GenerationRequest:
        return executor_request(self.task, problem, trace, self.sampling, sample_index)

    def run(self, problems: Sequence[Problem], traces: Sequence[str], samples_per_trace: int = 1,
            with_alone: bool = False) -> tuple[list[list[ExecutorOutcome]], dict[str, list[ExecutorOutcome]]]:
        """Outcomes of `samples_per_trace` executor samples per (problem, trace), and, if asked, the K
        executor-alone samples of every distinct problem; all requests go to the backend as one batch."""
        if len(problems) != len(traces):
            raise ValueError(f"{len(problems)} problems but {len(traces)} traces")
        with self._lock:
            requests: list[GenerationRequest] = []
            owners: list[tuple[str, int, Problem]] = []  # ("trace", trace index, p) or ("alone", -1, p)
            for i, (p, t) in enumerate(zip(problems, traces)):
                for j in range(samples_per_trace):
                    requests.append(self.request(p, t, j))
                    owners.append(("trace", i, p))
            if with_alone:
                todo = {p.problem_id: p for p in problems if p.problem_id not in self._alone}
                for p in todo.values():
                    for j in range(self.k):
                        requests.append(self.request(p, None, j))
                        owners.append(("alone", -1, p))
            calls0, hits0 = self.generator.model_calls, self.generator.cache_hits
            gens = self.generator.generate(requests) if requests else []
            outcomes = self._verify([o[2] for o in owners], gens)

            per_trace: list[list[ExecutorOutcome]] = [[] for _ in problems]
            fresh_alone: dict[str, list[ExecutorOutcome]] = {}
            for (kind, i, p), out in zip(owners, outcomes):
                if kind == "trace":
                    per_trace[i].append(out)
                    self.counters.with_trace_requests += 1
                else:
                    fresh_alone.setdefault(p.problem_id, []).append(out)
                    self.counters.alone_requests += 1
                    self.counters.alone_calls += 0 if out.cached else 1
            # The generator deduplicates identical requests (two completions with the same trace): count its calls.
            alone_calls = sum(not o.cached for os_ in fresh_alone.values() for o in os_)
            self.counters.with_trace_calls += self.generator.model_calls - calls0 - alone_calls
            self.counters.cache_hits += self.generator.cache_hits - hits0
            self._alone.update(fresh_alone)
            self.counters.alone_problems += len(fresh_alone)
            self.counters.traces += len(problems) if samples_per_trace else 0
            alone = {p.problem_id: self._alone[p.problem_id] for p in problems} if with_alone else {}
            return per_trace, alone

    def alone(self, problems: Sequence[Problem]) -> dict[str, list[ExecutorOutcome]]:
        """The K executor-alone samples of each problem (computed once per run, and cached across runs)."""
        return self.run(problems, [""] * len(problems), samples_per_trace=0, with_alone=True)[1]

    def _verify(self, problems: list[Problem], gens: list[Generation]) -> list[ExecutorOutcome]:
        judged = judge(self.task, self.cache, problems, [g.text for g in gens]).outcomes
        return [ExecutorOutcome(g.text, j.artifact, j.verdict, g.cached) for g, j in zip(gens, judged)]
