"""Math grader: extract the final answer, compare it exactly (Fraction) and with math-verify, side by side.

math-verify runs in worker processes with a hard per-answer deadline enforced from here: its own timeouts
use SIGALRM, which does nothing outside a main thread and cannot interrupt sympy stuck in C code.
A worker past its deadline is killed and replaced; a crashed worker is replaced too.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from tl_eval.harness.errors import ConfigError, DataError
from tl_eval.harness.types import Verdict
from tl_eval.harness.verify.math_extract import (
    check_pipeline,
    extract_answer,
    gold_from_gsm8k,
    gold_from_math_solution,
    clock_time,
    option_letter,
    option_letters,
    option_value,
    read_answer,
    temperature_scale,
    to_fraction,
)

__all__ = [
    "MathGrader",
    "extract_answer",
    "gold_from_gsm8k",
    "gold_from_math_solution",
    "exact_match",
    "label_match",
    "math_verify_equal",
    "numeric_equal",
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


def label_match(pred: str, gold: str) -> bool | None:
    """The verdict on answers that are labels, not arithmetic, or None when neither side is one.

    A time of day is compared as a time (math-verify reads `1:15` as the ratio 1/15, equal to `2:30`), seconds
    included; as written when neither side fixes the 24-hour hour, else on the 24-hour clock: `2:30` is not
    `14:30` or `2:30 PM` (a ratio `3:10` is not `3:10 PM` either). A gold option letter is compared as a
    letter ("(C) 12" answers gold `C`); two options with different letters differ whatever their values;
    several letters are compared as a set.
    """
    gold_scale, pred_scale = temperature_scale(gold), temperature_scale(pred)
    if gold_scale and pred_scale and gold_scale != pred_scale:
        return False  # 5 °F is not 5 °C, though both read as 5
    gold_time, pred_time = clock_time(gold), clock_time(pred)
    if gold_time or pred_time:
        if not (gold_time and pred_time):
            return False
        return gold_time[:3] == pred_time[:3]
    gold_letters = option_letters(gold)
    if gold_letters is not None:
        return option_letters(pred) == gold_letters
    letter = option_letter(gold)
    if letter is None:
        return None
    pred_letter = option_letter(pred)
    if re.fullmatch(r"\s*(?:\\text\{\s*)?\(?[A-E]\)?(?:\s*\})?\s*", gold):
        return pred_letter == letter
    if pred_letter is not None and (pred_letter != letter or not option_value(pred)):
        return pred_letter == letter  # "(C) 4" is not "(B) 4"; "(B)" answers "(B) 4"
    return None  # the values decide


def math_verify_equal(gold: str, pred: str) -> bool | str:
    """math-verify's verdict on one extracted answer against the gold answer (run inside a worker).

    Both sides are wrapped in `\\boxed{}` so math-verify parses exactly the given strings as LaTeX (with
    its plain-expression fallback) instead of searching them for an answer. Returns "error" when the
    gold itself does not parse: that is the data's fault, not the model's.

    math-verify's numeric comparison is replaced by `numeric_equal` (the exactness rule): two exact values
    are never equal within a tolerance, so `1/20!` is not `1/21!`.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    _install_exactness_rule()
    gold, pred = _scientific_to_latex(gold), _scientific_to_latex(pred)
    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    # Timeouts off: signal-based, they would turn a hang into a silent False; the pool's deadline rules.
    gold_parsed = parse(f"\\boxed{{{gold}}}", configs, parsing_timeout=None)
    if not gold_parsed:
        return "error"
    pred_parsed = parse(f"\\boxed{{{pred}}}", configs, parsing_timeout=None)
    if not pred_parsed:
        return False
    gold_parsed, pred_parsed = [_imaginary_unit(p) if not _BOUND_I.search(s) else p
                                for p, s in ((gold_parsed, gold), (pred_parsed, pred))]
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


# `i` as an index (`\\sum_{i=1}^{3} i`, `a_i`) is a variable, not the imaginary unit.
_BOUND_I = re.compile(r"_\s*\{?\s*i(?![A-Za-z])|\\(?:sum|prod)\b")


def _imaginary_unit(parsed: list) -> list:
    """The parses with the symbol `i` read as the imaginary unit.

    math-verify makes `i` a symbol whose assumptions depend on the spacing (`3-4i` and `3 - 4 i` give
    different symbols, so they differ); in a final answer `i` is the imaginary unit.
    """
    from sympy import Basic, I, Symbol

    def unit(x):
        if not isinstance(x, Basic):
            return x
        symbols = {s: I for s in x.atoms(Symbol) if s.name == "i"}
        return x.xreplace(symbols) if symbols else x

    return [unit(x) for x in parsed]


# --- the exactness rule -------------------------------------------------------------------------------

_SCIENTIFIC = re.compile(r"\s*([-+\u2212]?)(\d+(?:\.\d*)?|\.\d+)\s*[eE]\s*([-+\u2212]?\d{1,3})\s*")
_SIG_FIGS = 6  # a decimal standing for a non-terminating value must carry this many significant figures


def _scientific_to_latex(answer: str) -> str:
    """`1.5e-30` as `1.5\\times10^{-30}`, which math-verify reads exactly (it reads `1e-30` as `e - 30`)."""
    m = _SCIENTIFIC.fullmatch(answer)
    if not m:
        return answer
    sign = "-" if m.group(1) else ""
    return f"{sign}{m.group(2)}\\times10^{{{m.group(3).replace(chr(0x2212), '-')}}}"


def _install_exactness_rule() -> None:
    """Make math-verify (in this process) compare numbers with `numeric_equal` instead of its own rule.

    Its own rule rounds floats to 6 decimal places and calls two expressions equal when their difference
    evaluates to zero after `chop`: `1/20!` equals `1/21!`, `10^{-30}` equals `10^{-31}` and `0.0000001`
    equals `0.0000002`. Every comparison it makes (inside sets, tuples, intervals, equations, matrices)
    goes through that one function, so replacing it applies the exactness rule everywhere.
    """
    from math_verify import grader as mv_grader

    if getattr(mv_grader, "_tl_eval_exactness_rule", False):
        return
    if not callable(getattr(mv_grader, "sympy_numeric_eq", None)):
        raise RuntimeError("math_verify.grader.sympy_numeric_eq is gone: the exactness rule cannot be applied")
    mv_grader.sympy_numeric_eq = numeric_equal
    mv_grader._tl_eval_exactness_rule = True


def numeric_equal(a: Any, b: Any, float_rounding: int = 6, *_: Any, **__: Any) -> bool:
    """Whether two parsed sympy values are the same number (math-verify's numeric step, made exact).

    - Both exact (no float anywhere: integers, rationals, factorials, radicals, pi): equal only when
      exactly equal; math-verify then tries `simplify(a - b) == 0`. No tolerance at all.
    - A float on either side: decimals are read as the exact numbers they write (`0.50` is 1/2), so
      `0.5 = 1/2` and `0.5\\sqrt{2} = \\sqrt{2}/2` hold exactly. A tolerance applies only when one side has no
      terminating decimal expansion (1/3, pi, sqrt 2): then the values must agree within
      `0.5 * 10^-float_rounding` **and** to 6 significant figures (relative, so tiny values are not all
      "equal"): `0.333333 = 1/3`, but `0.333 != 1/3`, `0.2500001 != 1/4`, `1.0000001 != 1`.
    - `9%` equals `9` (math-verify's convention for integer percentages) as well as `9/100`.
    """
    from sympy import Float, MatrixBase
    from sympy.matrices.expressions import MatrixExpr

    if isinstance(a, (MatrixBase, MatrixExpr)) or isinstance(b, (MatrixBase, MatrixExpr)):
        a, b = _doit(a), _doit(b)
        if isinstance(a, MatrixBase) and isinstance(b, MatrixBase) and a.shape == b.shape:
            return all(numeric_equal(x, y, float_rounding) for x, y in zip(a, b))
        return False
    try:
        pa, pb = _percent_of(a), _percent_of(b)
        if (pa is not None or pb is not None) and _is_integer(pa if pa is not None else a) and _is_integer(
            pb if pb is not None else b
        ):
            if (pa if pa is not None else a) == (pb if pb is not None else b):
                return True
        a, b = _doit(a), _doit(b)
        if not (a.has(Float) or b.has(Float)):
            return bool(a == b)  # exact: symbolic equality is math-verify's next step
        ea, eb = _decimals_exact(a), _decimals_exact(b)
        if ea == eb or _is_zero_exactly(ea - eb):
            return True
        if _terminates(ea) and _terminates(eb):
            return False  # two finite decimals: any difference is a real difference
        return _close(a, b, float_rounding)
    except Exception:  # noqa: BLE001  (sympy raises many types on odd input; not equal then)
        return False


def _doit(x: Any) -> Any:
    try:
        return x.doit()
    except Exception:  # noqa: BLE001
        return x


def _percent_of(x: Any) -> Any:
    """X for math-verify's parse of `X%` (X * UnevaluatedExpr(1/100)), else None."""
    from sympy import Mul, Rational, UnevaluatedExpr

    if isinstance(x, Mul) and len(x.args) == 2 and x.args[1] == UnevaluatedExpr(Rational(1, 100)):
        return x.args[0]
    return None


def _is_integer(x: Any) -> bool:
    from sympy import Integer

    return isinstance(x, Integer)


def _decimals_exact(x: Any) -> Any:
    """`x` with every float replaced by the exact rational its decimal digits write."""
    from sympy import Float, Rational

    floats = x.atoms(Float)
    return x.xreplace({f: Rational(str(f)) for f in floats}) if floats else x


def _is_zero_exactly(d: Any) -> bool:
    from sympy import simplify

    if d == 0:
        return True
    if d.free_symbols:
        return bool(simplify(d) == 0)
    return bool(simplify(d).is_zero)


def _terminates(x: Any) -> bool:
    """A rational whose decimal expansion ends (denominator 2^i 5^j)."""
    if not getattr(x, "is_Rational", False):
        return False
    q = int(x.q)
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def _close(a: Any, b: Any, float_rounding: int) -> bool:
    """|a - b| within half a unit of the `float_rounding`-th decimal place and of the 6th significant figure."""
    from sympy import Abs, N, floor, log

    if getattr(a, "free_symbols", None) or getattr(b, "free_symbols", None):
        return False
    diff = N(Abs(a - b), 40)
    size = max(N(Abs(a), 40), N(Abs(b), 40))
    if not (diff.is_Number and size.is_Number) or size == 0:
        return False
    exponent = int(floor(log(size, 10)))
    tolerance = min(N(10, 40) ** -float_rounding, N(10, 40) ** (exponent + 1 - _SIG_FIGS)) / 2
    return bool(diff <= tolerance)


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
        fn: str = "tl_eval.harness.verify.math_grader:math_verify_equal",
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
        code = "from tl_eval.harness.verify.math_grader import _worker_entry; _worker_entry()"
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
        # Only the pipeline's own extraction: the other one would double the time for a detail nobody grades by.
        chosen = [extract_answer(o or "", self.pipeline) for o in outputs]
        extractions = [(c if self.pipeline == "strict" else None, c if self.pipeline == "flexible" else None)
                       for c in chosen]
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
            mv = self._math_verify([(read_answer(g), read_answer(c)) for g, c in zip(golds, chosen)
                                    if c is not None and label_match(c, g) is None])
        verdicts = []
        for gold, answer, (strict, flexible) in zip(golds, chosen, extractions):
            details = {
                "pipeline": pipeline,
                "extracted_strict": strict,
                "extracted_flexible": flexible,
                "exact_match": None,
                "math_verify": None,
                "gold": gold,
                "answer_read": None,
            }
            if answer is None:
                verdicts.append(Verdict("no_answer", details=details))
                continue
            read_pred, read_gold = read_answer(answer), read_answer(gold)
            details["answer_read"] = read_pred
            label = label_match(answer, gold)
            if label is not None:  # a time or an option letter: no arithmetic comparison applies
                details["exact_match"] = label
                verdicts.append(Verdict("pass" if label else "fail", details=details))
                continue
            result, seconds, error = mv[(read_gold, read_pred)]
            details["exact_match"] = exact_match(read_pred, read_gold)
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
