"""Statuses, failing-test reporting, limits, retries and reference-scaled time limits."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tl_eval.harness.verify.code_job import CodeJob, CodeTest
from tests.conftest_sandbox import SENTINEL, job


@pytest.fixture(scope="module")
def verifier():
    with CodeVerifier(SandboxLimits(workers=2, output_bytes=5000)) as v:
        yield v


def test_each_status(verifier):
    jobs = [job("def f(x):\n    return x * 2\n", ["assert f(2) == 4", "assert f(3) == 6"]),
            job("def f(x):\n    return x * 2\n", ["assert f(2) == 4", "assert f(3) == 7", "assert f(1) == 2"]),
            job("def f(x)\n    return x\n", "assert f(1) == 1"),
            job("def f(x):\n    return [][x]\n", "assert f(1) == 1"),
            job("raise ValueError('at import')\ndef f(x):\n    return x\n", "assert f(1) == 1"),
            job("def g(x):\n    return x\n", "assert f(1) == 1"),
            job("def f(x):\n    while True:\n        pass\n", "assert f(1) == 1", time_limit_s=0.5)]
    got = [v.status for v in verifier.verify(jobs)]
    assert got == ["pass", "fail", "compile_error", "runtime_error", "runtime_error", "runtime_error", "timeout"]


def test_failing_test_named_with_line_and_stderr(verifier):
    sol = "def f(x):\n    print('debug', x)\n    return x + 1 if x != 3 else 0\n"
    tests = (CodeTest("first", "assert f(1) == 2"), CodeTest("second", "y = 3\nassert f(y) == 4, 'three'"),
             CodeTest("third", "assert f(5) == 6"))
    v = verifier.verify([CodeJob(sol, "f", tests, time_limit_s=2)])[0]
    assert v.status == "fail" and v.failing_test == "second"
    assert v.details["failing_line"] == "assert f(y) == 4, 'three'"
    assert "debug 3" in v.stderr
    assert len(v.details["test_seconds"]) == 2  # stops at the first failing test


def test_expected_exceptions_cross_over(verifier):
    sol = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    test = "try:\n    f(-1)\n    raise AssertionError('no error')\nexcept ValueError:\n    pass\nassert f(2) == 2"
    assert verifier.verify([job(sol, test)])[0].status == "pass"


def test_stderr_is_bounded(verifier):
    sol = "import sys\ndef f():\n    sys.stderr.write('E' * 4000)\n    return 0\n"
    v = verifier.verify([job(sol, "assert f() == 1")])[0]
    assert v.status == "fail" and 0 < len(v.stderr) <= 2000


def test_context_is_trusted_and_hidden_from_candidate(verifier):
    ctx = "def reference(x):\n    return x * 10\ndef helper(v):\n    return v + 1\n"
    sol = "def f(x):\n    return reference(x)\n"  # the reference must not be reachable from the candidate
    v = verifier.verify([job(sol, "assert helper(f(2)) == 21", context=ctx),
                         job("def f(x):\n    return x * 10\n", "assert helper(f(2)) == 21", context=ctx)])
    assert [x.status for x in v] == ["runtime_error", "pass"]


def test_sample_cap_bounds_all_tests():
    with CodeVerifier(SandboxLimits(workers=1, sample_time_cap_s=1.0)) as v:
        sol = "import time\ndef f():\n    time.sleep(0.4)\n    return 1\n"
        r = v.verify([job(sol, ["assert f() == 1"] * 6, time_limit_s=5)])[0]
    assert r.status == "timeout" and r.seconds < 3


def test_limits_validated():
    for bad in (dict(memory_mb=0), dict(time_limit_factor=-1), dict(workers=0), dict(output_bytes=1.5)):
        with pytest.raises(ConfigError):
            SandboxLimits(**bad)


def test_reference_time_limits_scale_and_cache():
    limits = SandboxLimits(workers=1, time_limit_floor_s=0.2, time_limit_factor=3.0)
    fast = job("def f():\n    return 1\n", "assert f() == 1")
    slow = job("import time\ndef f():\n    time.sleep(0.3)\n    return 1\n", "assert f() == 1")
    with CodeVerifier(limits) as v:
        lf, ls = v.reference_time_limits([fast, slow])
        assert lf == pytest.approx(0.2)
        assert 0.9 <= ls <= 3.0
        t = time.monotonic()
        assert v.reference_time_limits([slow]) == [ls]
        assert time.monotonic() - t < 0.2  # served from the cache
        # a candidate three times slower than the reference fits; one ten times slower does not
        ok = job("import time\ndef f():\n    time.sleep(0.5)\n    return 1\n", "assert f() == 1", time_limit_s=ls)
        late = job("import time\ndef f():\n    time.sleep(4)\n    return 1\n", "assert f() == 1", time_limit_s=ls)
        assert [r.status for r in v.verify([ok, late])] == ["pass", "timeout"]


def test_worker_crash_is_retried():
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        victim = v._pool.handles[0].proc.pid
        killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        sol = "import time\ndef f():\n    time.sleep(1.0)\n    return 1\n"
        r = v.verify([job(sol, "assert f() == 1", time_limit_s=3)])[0]
        killer.join()
        assert r.status == "pass" and r.details["attempts"] == 2
        assert v._pool.handles[0].proc.pid != victim


def test_sandbox_error_reported_apart_after_retries(monkeypatch):
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        v._pool.handles[0].stop()
        from tl_eval.harness.verify.sandbox import tiers
        monkeypatch.setattr(tiers, "worker_argv", lambda *a, **k: ["/bin/false"])
        r = v.verify([SENTINEL])[0]
    assert r.status == "sandbox_error" and r.details["attempts"] == 3
    assert not r.passed


def test_context_error_is_sandbox_error(verifier):
    r = verifier.verify([job("def f():\n    return 1\n", "assert f() == 1", context="import no_such_module_xyz")])[0]
    assert r.status == "sandbox_error" and "context" in r.details["reason"]
