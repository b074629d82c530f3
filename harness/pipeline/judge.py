"""The one execute-and-verify step: the executor request of (problem, trace), and the verdicts of outputs
through the verdict cache, each distinct artifact judged once. Evaluation and training both use it, so the
same outputs get the same verdicts (and cache keys) in both."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from tl_eval.harness.pipeline.cache import Cache
from tl_eval.harness.task import Task, canonical
from tl_eval.harness.types import GenerationRequest, Problem, SamplingParams, Verdict


def executor_request(task: Task, problem: Problem, trace: str | None, sampling: SamplingParams,
                     sample_index: int) -> GenerationRequest:
    """The executor call for (problem, trace); `trace=None` is the executor alone. Training builds the same."""
    # Backends derive each sample's seed from (seed, sample_index): see harness.models.seeds.
    return GenerationRequest(tuple(task.executor_messages(problem, trace)), sampling, sample_index)


class VerdictKeys:
    """Cache keys of verdicts for one task: what was judged, against which problem, under which grader.

    The key is a function of what decides the verdict only (the task's `verdict_identity`: grader
    settings and versions; the problem's content; the artifact; for math the raw output the grader
    reads), so that it is the same in every process and every run with the same settings.
    """

    def __init__(self, task: Task):
        self.task = task
        self._identity = hashlib.sha256(json.dumps(task.verdict_identity(), sort_keys=True).encode()).hexdigest()
        self._problems: dict[str, str] = {}

    def _problem(self, problem: Problem) -> str:
        if problem.problem_id not in self._problems:  # tests can be large: hash each problem once
            fields = canonical({f.name: getattr(problem, f.name) for f in dataclasses.fields(problem)})
            self._problems[problem.problem_id] = hashlib.sha256(
                json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return self._problems[problem.problem_id]

    def __call__(self, problem: Problem, artifact: str | None, output: str) -> str:
        return hashlib.sha256(json.dumps(
            [self._identity, self._problem(problem), artifact, output if self.task.verdict_reads_output else None]
        ).encode()).hexdigest()


def verdict_key(task: Task, problem: Problem, artifact: str | None, output: str) -> str:
    """Cache key of one verdict (see VerdictKeys, which is cheaper for many verdicts of one task)."""
    return VerdictKeys(task)(problem, artifact, output)


@dataclass
class Judged:
    """One output's extracted artifact and verdict; `cached` when the verdict came from the cache."""

    artifact: str | None
    verdict: Verdict
    cached: bool


@dataclass
class Judgement:
    outcomes: list[Judged]
    verified: int  # distinct artifacts the task's verifier judged in this call


def judge(task: Task, cache: Cache, problems: Sequence[Problem], outputs: Sequence[str]) -> Judgement:
    """Extract each output's artifact and judge it: cached verdicts are reused, and identical (problem,
    artifact[, output]) triples are verified once and stored."""
    artifacts = [task.extract(p, o) for p, o in zip(problems, outputs)]
    key_of = VerdictKeys(task)
    keys = [key_of(p, a, o) for p, a, o in zip(problems, artifacts, outputs)]
    verdicts: list[Verdict | None] = [cache.get_verdict(k) for k in keys]
    cached = [v is not None for v in verdicts]
    todo: dict[str, list[int]] = {}
    for n, (key, v) in enumerate(zip(keys, verdicts)):
        if v is None:
            todo.setdefault(key, []).append(n)
    if todo:
        firsts = [idx[0] for idx in todo.values()]
        fresh = task.verify([problems[n] for n in firsts], [artifacts[n] for n in firsts],
                            [outputs[n] for n in firsts])
        for (key, idx), v in zip(todo.items(), fresh):
            cache.put_verdict(key, v)
            for n in idx:
                verdicts[n] = v
    return Judgement([Judged(a, v, c) for a, v, c in zip(artifacts, verdicts, cached)],  # type: ignore[arg-type]
                     len(todo))
