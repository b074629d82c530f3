"""Math grader: extract the final answer, compare it exactly (Fraction) and with math-verify, side by side.

math-verify runs in worker processes with a hard per-answer deadline enforced from here: its own timeouts
use SIGALRM, which does nothing outside a main thread and cannot interrupt sympy stuck in C code.
A worker past its deadline is killed and replaced; a crashed worker is replaced too.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from harness.errors import ConfigError, DataError
from harness.types import Verdict
from harness.verify.math_extract import (
    check_pipeline,
    extract_flexible,
    extract_strict,
    extract_answer,
    gold_from_gsm8k,
    gold_from_math_solution,
    to_fraction,
)

__all__ = [
    "MathGrader",
    "extract_answer",
    "gold_from_gsm8k",
    "gold_from_math_solution",
    "exact_match",
    "math_verify_equal",
]

MVResult = Any  # True | False | "timeout" | "error"
_STARTUP_TIMEOUT_S = 120.0  # spawning imports sympy; generous because CPUs may be shared
_MEMORY_LIMIT_BYTES = 4 << 30  # a runaway sympy power must hit MemoryError, not the machine's OOM killer
_CACHE_SIZE = 50_000
_CPU_GRACE_S = 10.0  # CPU seconds past the wall deadline before a worker ends itself (orphan backstop)


def exact_match(pred: str | None, gold: str | None) -> bool | None:
    """Exact numeric equality via Fraction; None when either side is not a plain number."""
    a, b = to_fraction(pred), to_fraction(gold)
    return None if a is None or b is None else a == b


def math_verify_equal(gold: str, pred: str) -> bool | str:
    """math-verify's verdict on one extracted answer against the gold answer (run inside a worker).

    Both sides are wrapped in `\\boxed{}` so math-verify parses exactly the given strings as LaTeX (with
    its plain-expression fallback) instead of searching them for an answer. Returns "error" when the
    gold itself does not parse: that is the data's fault, not the model's.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    # Timeouts off: signal-based, they would turn a hang into a silent False; the pool's deadline rules.
    gold_parsed = parse(f"\\boxed{{{gold}}}", configs, parsing_timeout=None)
    if not gold_parsed:
        return "error"
    pred_parsed = parse(f"\\boxed{{{pred}}}", configs, parsing_timeout=None)
    if not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


@dataclass
class _Worker:
    proc: subprocess.Popen
    send: Connection
    recv: Connection
    ready: bool = False
    job: int | None = None
    deadline: float = 0.0
    started: float = field(default_factory=time.monotonic)


def _worker_entry() -> None:
    """Entry point of a worker process: jobs arrive on stdin, results leave on stdout (pickled frames)."""
    fn_spec, memory_limit, cpu_budget = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # stray prints of a library go to stderr, not into the result channel
    sys.stdout = sys.stderr
    if memory_limit:
        import resource  # POSIX only, like the rest of the worker

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # silence "timeout disabled" notices
    module, _, name = fn_spec.partition(":")
    fn = getattr(importlib.import_module(module), name)
    import math_verify  # noqa: F401  (imported before "ready", so start-up time is not charged to a job)

    outbox.send("ready")
    while True:
        try:
            job = inbox.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        index, gold, pred = job
        _limit_cpu(cpu_budget)
        try:
            result = fn(gold, pred)
        except BaseException as exc:  # noqa: BLE001  (a MemoryError or sympy bug must not end the worker)
            result = ("error", f"{type(exc).__name__}: {exc}"[:500])
        outbox.send((index, result))


def _limit_cpu(budget_s: float) -> None:
    """Let the kernel end this job after `budget_s` more CPU seconds (SIGXCPU).

    The parent's wall deadline normally comes first; this backstop ends a worker whose parent was killed
    while sympy held the GIL in C code, where no watchdog thread could run.
    """
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + budget_s) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class MathVerifyPool:
    """Worker processes running `fn(gold, pred)` with a hard per-call deadline; started lazily.

    `fn` is named as "module:function" so that a worker imports it itself. Workers are fresh interpreters
    (not multiprocessing's fork or spawn): a fork would copy the caller's threads' locks (llama.cpp,
    torch), and spawn re-runs the caller's main script, which fails for `python -` and notebooks.
    """

    def __init__(
        self,
        size: int = 1,
        timeout_s: float = 5.0,
        fn: str = "harness.verify.math_grader:math_verify_equal",
        memory_limit: int = _MEMORY_LIMIT_BYTES,
    ):
        self.size, self.timeout_s, self.fn, self.memory_limit = size, timeout_s, fn, memory_limit
        self._workers: list[_Worker] = []
        self.counts = {"jobs": 0, "timeouts": 0, "errors": 0, "worker_restarts": 0, "workers_started": 0}

    def run(self, jobs: Sequence[tuple[str, str]]) -> list[tuple[MVResult, float, str]]:
        """(result, seconds, error message) for each (gold, pred), in order."""
        results: list[tuple[MVResult, float, str] | None] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        while pending or any(w.job is not None for w in self._workers):
            busy = sum(w.job is not None for w in self._workers)
            while len(self._workers) < min(self.size, len(pending) + busy):
                self._spawn()
            for w in list(self._workers):
                if w.ready and w.job is None and pending:
                    index = pending.popleft()
                    w.job, w.deadline = index, time.monotonic() + self.timeout_s
                    self.counts["jobs"] += 1
                    try:
                        w.send.send((index, *jobs[index]))
                    except OSError:
                        self._on_crash(w, results)
            self._wait_and_collect(results)
        return results  # type: ignore[return-value]

    def _wait_and_collect(self, results: list) -> None:
        if not self._workers:
            return
        now = time.monotonic()
        deadlines = [w.deadline if w.ready else w.started + _STARTUP_TIMEOUT_S for w in self._workers]
        for conn in wait([w.recv for w in self._workers], timeout=max(0.0, min(deadlines) - now)):
            w = next(w for w in self._workers if w.recv is conn)
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self._on_crash(w, results)
                continue
            if message == "ready":
                w.ready = True
                continue
            index, result = message
            error = ""
            if isinstance(result, tuple):
                result, error = result
            if result == "error":
                self.counts["errors"] += 1
            results[index] = (result, time.monotonic() - (w.deadline - self.timeout_s), error)
            w.job = None
        now = time.monotonic()
        for w in list(self._workers):
            if w.job is not None and now >= w.deadline:
                results[w.job] = ("timeout", self.timeout_s, f"math-verify exceeded {self.timeout_s:g} s")
                self.counts["timeouts"] += 1
                self.counts["worker_restarts"] += 1
                self._retire(w)
            elif not w.ready and now >= w.started + _STARTUP_TIMEOUT_S:
                self._retire(w)
                raise ConfigError(
                    f"math-verify worker did not start within {_STARTUP_TIMEOUT_S:g} s",
                    "check that `python -c 'import math_verify'` works in this environment",
                )

    def _on_crash(self, w: _Worker, results: list) -> None:
        try:
            code = w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None  # closed its pipe but still runs: _retire kills it
        self._retire(w)
        if not w.ready:
            raise ConfigError(
                f"math-verify worker exited during start-up (exit code {code})",
                "check that `python -c 'import math_verify'` works (pip install 'math-verify>=0.7,<1')",
            )
        self.counts["worker_restarts"] += 1
        if w.job is not None:
            self.counts["errors"] += 1
            results[w.job] = ("error", 0.0, f"math-verify worker died (exit code {code})")

    def _spawn(self) -> None:
        code = "from harness.verify.math_grader import _worker_entry; _worker_entry()"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.Popen(
            [sys.executable, "-c", code, self.fn, str(self.memory_limit), str(self.timeout_s + _CPU_GRACE_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        send = Connection(os.dup(proc.stdin.fileno()), readable=False)
        recv = Connection(os.dup(proc.stdout.fileno()), writable=False)
        proc.stdin.close()
        proc.stdout.close()
        self._workers.append(_Worker(proc, send, recv))
        self.counts["workers_started"] += 1

    def _retire(self, w: _Worker) -> None:
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait(timeout=10)
        w.send.close()
        w.recv.close()
        self._workers.remove(w)

    def close(self) -> None:
        """Stop all workers; a later `run` starts new ones."""
        for w in self._workers:
            try:
                w.send.send(None)
            except OSError:
                pass
        for w in list(self._workers):
            try:
                w.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(timeout=10)
            w.send.close()
            w.recv.close()
        self._workers.clear()


class MathGrader:
    """Grades math outputs against gold answers.

    Verdict: `no_answer` when the pipeline extracts nothing; else `pass` when math-verify says equal or the
    exact numeric comparison matches, `fail` otherwise. A math-verify timeout or error leaves the exact
    comparison to decide, and is recorded in the details.
    """

    def __init__(self, pipeline: str = "strict", timeout_s: float = 5.0, workers: int = 1):
        self.pipeline = check_pipeline(pipeline)
        if not timeout_s > 0:
            raise ConfigError(f"math grader timeout must be positive, got {timeout_s!r}", "pass timeout_s > 0, e.g. 5")
        if int(workers) < 1:
            raise ConfigError(f"math grader needs at least one worker, got {workers!r}", "pass workers >= 1")
        self.timeout_s = float(timeout_s)
        self.workers = int(workers)
        self._pool: MathVerifyPool | None = None
        self._cache: OrderedDict[tuple[str, str], tuple[MVResult, float, str]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def counts(self) -> dict[str, int]:
        """math-verify calls, timeouts, errors, worker starts and restarts so far (kept across `close`)."""
        base = {"jobs": 0, "timeouts": 0, "errors": 0, "worker_restarts": 0, "workers_started": 0}
        return dict(self._pool.counts) if self._pool else base

    def grade(self, outputs: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """Verdicts for raw outputs, extracting each answer with the grader's pipeline."""
        if len(outputs) != len(golds):
            raise ValueError(f"{len(outputs)} outputs but {len(golds)} gold answers")
        extractions = [(extract_strict(o or ""), extract_flexible(o or "")) for o in outputs]
        chosen = [s if self.pipeline == "strict" else f for s, f in extractions]
        return self._grade(chosen, golds, extractions, self.pipeline)

    def grade_answers(self, answers: Sequence[str | None], golds: Sequence[str]) -> list[Verdict]:
        """Verdicts for answers extracted already (None: no answer); details say pipeline "given"."""
        if len(answers) != len(golds):
            raise ValueError(f"{len(answers)} answers but {len(golds)} gold answers")
        return self._grade(list(answers), golds, [(None, None)] * len(answers), "given")

    def _grade(self, chosen, golds, extractions, pipeline: str) -> list[Verdict]:
        for i, gold in enumerate(golds):
            if gold is None or not str(gold).strip():
                raise DataError(f"math item {i} has no gold answer", "give every math problem an `answer`")
        golds = [str(g).strip() for g in golds]
        with self._lock:
            mv = self._math_verify([(g, c) for g, c in zip(golds, chosen) if c is not None])
        verdicts = []
        for gold, answer, (strict, flexible) in zip(golds, chosen, extractions):
            details = {
                "pipeline": pipeline,
                "extracted_strict": strict,
                "extracted_flexible": flexible,
                "exact_match": None,
                "math_verify": None,
                "gold": gold,
            }
            if answer is None:
                verdicts.append(Verdict("no_answer", details=details))
                continue
            result, seconds, error = mv[(gold, answer)]
            details["exact_match"] = exact_match(answer, gold)
            details["math_verify"] = result
            passed = result is True or details["exact_match"] is True
            verdicts.append(Verdict("pass" if passed else "fail", stderr=error, seconds=seconds, details=details))
        return verdicts

    def _math_verify(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[MVResult, float, str]]:
        # n samples of one problem often give the same answer: verify each distinct pair once.
        todo = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        fresh: dict[tuple[str, str], tuple[MVResult, float, str]] = {}
        if todo:
            if self._pool is None:
                self._pool = MathVerifyPool(self.workers, self.timeout_s)
            fresh = dict(zip(todo, self._pool.run(todo)))
            for pair, outcome in fresh.items():
                if outcome[0] != "error":  # a crash may be transient; everything else is deterministic
                    self._cache[pair] = outcome
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        out = {}
        for pair in pairs:
            if pair in fresh:
                out[pair] = fresh[pair]
            else:
                result, _, error = self._cache[pair]
                self._cache.move_to_end(pair)
                out[pair] = (result, 0.0, error)
        return out

    def close(self) -> None:
        """Stop the worker processes (a later `grade` starts them again)."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()

    def __enter__(self) -> MathGrader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown: modules may be gone already)
            pass
