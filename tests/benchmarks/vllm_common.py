"""What bench_vllm_gpu.py and bench_vllm_cpu.py share: the requests (built by the harness's own code), timing a
generator on them, comparing greedy outputs, pass@1 through the task's verifier, and an exact sign test.

Imported by those scripts as a sibling module (`python tests/benchmarks/bench_vllm_*.py` puts this folder on
sys.path first).
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tl_eval.harness.config import RunConfig, SamplingSettings, VerifierSettings
from tl_eval.harness.evaluate import load_task_problems
from tl_eval.harness.models.base import Generator
from tl_eval.harness.pipeline.cache import Cache
from tl_eval.harness.pipeline.interventions import parse_conditions
from tl_eval.harness.pipeline.judge import executor_request
from tl_eval.harness.pipeline.run import Evaluation, StageCost
from tl_eval.harness.task import Task
from tl_eval.harness.types import Generation, GenerationRequest, Problem


# -- requests ----------------------------------------------------------------------------------------------------

def load_tasks(names: Sequence[str], limit: int | None) -> list[tuple[Task, list[Problem]]]:
    return [(task, problems) for task, problems, _ in load_task_problems(list(names), VerifierSettings(), limit=limit)]


def executor_alone_requests(task: Task, problems: Sequence[Problem],
                            max_tokens: int | None = None) -> list[GenerationRequest]:
    """The executor-alone call of each problem, as the harness makes it (greedy, its executor token budget)."""
    sampling = SamplingSettings(**({"executor_max_tokens": max_tokens} if max_tokens else {})).executor()
    return [executor_request(task, p, None, sampling, 0) for p in problems]


@dataclass
class Call:
    """One `generate` call: a stage of one task (its planner turns, or all its executor turns)."""

    task: str
    stage: str  # "plan" or "execute"
    requests: list[GenerationRequest]
    outputs: list[Generation] = field(default_factory=list)
    seconds: float = 0.0


class Recorder(Generator):
    """Passes every call on to `inner` and keeps its requests, outputs and wall time, stage by stage; `after(call)`
    runs once each call is answered (another generator on the same requests, while the load is the same)."""

    def __init__(self, inner: Generator, after: Callable[[Call], None] | None = None):
        self.inner = inner
        self.spec = inner.spec
        self.calls: list[Call] = []
        self.after = after
        self._where = ("", "")

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def sampled_fingerprint(self) -> str:
        return self.inner.sampled_fingerprint()

    def generate(self, requests, on_done=None):
        call = Call(*self._where, list(requests))
        start = time.perf_counter()
        call.outputs = self.inner.generate(requests, on_done=on_done)
        call.seconds = time.perf_counter() - start
        self.calls.append(call)
        if self.after is not None:
            self.after(call)
        return call.outputs


def faithfulness_workload(gen: Generator, tasks: Sequence[tuple[Task, list[Problem]]], conditions: str = "faithfulness",
                          planner_max_tokens: int | None = None, executor_max_tokens: int | None = None,
                          after: Callable[[Call], None] | None = None,
                          log: Callable[[str], None] = print) -> list[Call]:
    """The model calls of `tl-eval --planner G --executor G --conditions C` on `tasks`, with `gen` as both models:
    the harness's own stages (tagged planner turns with their prefill and stops, then every active condition's
    executor turn in one call per task, deduplicated through an in-memory cache), without verifying. The
    executor prompts hold `gen`'s plans, so this is `gen`'s first timed pass over the workload as well; `after`
    sees each call as soon as `gen` has answered it (Recorder)."""
    sizes = {k: v for k, v in (("planner_max_tokens", planner_max_tokens),
                               ("executor_max_tokens", executor_max_tokens)) if v}
    cfg = RunConfig(tasks=[t.name for t, _ in tasks], planner=gen.spec, executor=gen.spec,
                    conditions=conditions.split(","), **sizes)
    rec = Recorder(gen, after)
    evaluation = Evaluation(cfg, rec, rec, Cache(None), parse_conditions(conditions), show_progress=False, log=log)
    for task, problems in tasks:
        rec._where = (task.name, "plan")
        traces = evaluation.plan(task, problems, StageCost())
        records = evaluation.build_records(task, problems, traces, {})
        # The executed records, as Evaluation.run_task picks them.
        active = [r for r in records if r.intervention.applied or r.condition in ("full", "none")]
        rec._where = (task.name, "execute")
        evaluation.execute(task, {p.problem_id: p for p in problems}, active, {})
    return rec.calls


# -- timing ------------------------------------------------------------------------------------------------------

def timed(gen: Generator, requests: Sequence[GenerationRequest]) -> tuple[list[Generation], float]:
    start = time.perf_counter()
    outs = gen.generate(list(requests))
    return outs, time.perf_counter() - start


def start_up(load: Callable[[], Generator], probe: GenerationRequest) -> tuple[Generator, float]:
    """The generator and the seconds until it answered `probe` (loading, engine start, compilation): kept out of
    the throughput, which is measured on later calls."""
    start = time.perf_counter()
    gen = load()
    gen.generate([probe])
    return gen, time.perf_counter() - start


def completion_tokens(outs: Sequence[Generation]) -> int:
    return sum(g.completion_tokens for g in outs)


# -- comparing outputs -------------------------------------------------------------------------------------------

def equal_texts(a: Sequence[Generation], b: Sequence[Generation]) -> int:
    return sum(x.text == y.text for x, y in zip(a, b, strict=True))


def passed(task: Task, problems: Sequence[Problem], outs: Sequence[Generation]) -> list[bool]:
    """Each output's verdict by the task's own extractor and verifier."""
    verdicts = task.verify(list(problems), [task.extract(p, g.text) for p, g in zip(problems, outs, strict=True)],
                           [g.text for g in outs])
    return [bool(v.passed) for v in verdicts]


def sign_test(a_only: int, b_only: int) -> float:
    """Exact two-sided sign test on the discordant pairs (a passes and b fails, or the reverse): p of a split at
    least this uneven when each discordant pair goes either way with probability 1/2."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    try:
        from scipy.stats import binomtest

        return float(binomtest(a_only, n, 0.5, alternative="two-sided").pvalue)
    except ImportError:
        k = min(a_only, b_only)
        return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


# -- the machine -------------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.CalledProcessError):
        name = ""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            words = set(next((line for line in f if line.startswith("flags")), "").split())
        flags = " ".join(x for x in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if x in words)
    except OSError:
        pass
    return f"{name or platform.processor() or '?'}, {os.cpu_count()} cores visible, flags: {flags or '?'}"


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"
