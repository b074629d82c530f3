"""What the speed-ups must not change: one child per job (shared by that job's tests only), an emptied temp dir
between jobs, load failures judged as before, workers kept across calls, and retries with jobs queued ahead."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tl_eval.harness.verify.sandbox import codec
from tests.conftest_sandbox import SENTINEL, job, sandbox_processes

COUNTER = "calls = 0\ndef f():\n    global calls\n    calls += 1\n    return calls\n"


@pytest.fixture(scope="module", params=["bwrap", "seccomp"])
def verifier(request):
    mp = pytest.MonkeyPatch()
    mp.setenv("TL_EVAL_SANDBOX_TIER", request.param)
    v = CodeVerifier(SandboxLimits(workers=1))
    mp.undo()
    assert v.tier == request.param
    yield v
    v.close()


def test_tests_of_one_job_share_a_child_jobs_do_not(verifier):
    two_tests = job(COUNTER, ["assert f() == 1", "assert f() == 2"])
    again = job(COUNTER, ["assert f() == 1"])
    assert [v.status for v in verifier.verify([two_tests, again, two_tests])] == ["pass", "pass", "pass"]
    assert sandbox_processes() == []


def test_temp_dir_is_emptied_between_jobs(verifier):
    writer = job("import os\ndef f():\n    os.makedirs('d/e', exist_ok=True)\n    open('d/e/x', 'w').write('1')\n"
                 "    open('y', 'w').write('1')\n    os.symlink('/etc', 'link')\n    return sorted(os.listdir('.'))\n",
                 "assert f() == ['d', 'link', 'y']")
    reader = job("import os\ndef f():\n    return os.listdir('.')\n", "assert f() == []")
    assert [v.status for v in verifier.verify([writer, reader, writer, reader])] == ["pass"] * 4


@pytest.mark.parametrize("test", ["pass", "assert False", "raise KeyError('x')"])
def test_load_failure_decides_even_without_a_call(verifier, test):
    # The worker runs the test while the child starts; how the program loaded must still decide first.
    broken = [job("def f(:\n", test), job("raise ValueError('at import')\ndef f():\n    return 1\n", test),
              job("def g():\n    return 1\n", test)]
    assert [v.status for v in verifier.verify(broken)] == ["compile_error", "runtime_error", "runtime_error"]
    assert verifier.verify([job("def f():\n    return 1\n", test)])[0].status == ("pass" if test == "pass" else "fail")


def test_load_timeout_without_a_call(verifier):
    v = verifier.verify([job("while True:\n    pass\n", "pass", time_limit_s=0.5)])[0]
    assert v.status == "timeout"


def test_modules_not_preloaded_import_in_the_child(verifier):
    sol = ("import hashlib, fractions, statistics, datetime\n"
           "def f(s):\n    return [hashlib.md5(s.encode()).hexdigest(), str(fractions.Fraction(2, 4)),\n"
           "            statistics.median([3, 1, 2]), datetime.date(2024, 1, 2).isoformat()]\n")
    v = verifier.verify([job(sol, "assert f('a') == ['0cc175b9c0f1b6a831c399e269772661', '1/2', 2, '2024-01-02']")])[0]
    assert v.status == "pass", (v.details, v.stderr)


def test_workers_survive_between_calls():
    # bwrap's --die-with-parent follows the *thread* that started a worker; feeding threads come and go.
    with CodeVerifier(SandboxLimits(workers=2), tier="bwrap") as v:
        v.verify([SENTINEL] * 4)
        pids = [h.proc.pid for h in v._pool.handles]
        assert all(h.proc.poll() is None for h in v._pool.handles)
        v.verify([SENTINEL] * 4)
        assert [h.proc.pid for h in v._pool.handles] == pids


def test_crash_with_a_job_queued_behind_it():
    # The second job waits in the worker's pipe while the first runs; the crash must not charge or lose it.
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        victim = v._pool.handles[0].proc.pid
        killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        slow = job("import time\ndef f():\n    time.sleep(1.0)\n    return 1\n", "assert f() == 1", time_limit_s=3)
        first, second, third = v.verify([slow, SENTINEL, SENTINEL])
        killer.join()
    assert [first.status, second.status, third.status] == ["pass"] * 3
    assert first.details["attempts"] == 2 and second.details["attempts"] == 1 and third.details["attempts"] == 1


@pytest.mark.parametrize("wire", [b'{"b": "0a 0b"}', b'{"b": "abc"}', b'{"b": "zz"}', b'{"b": 5}'])
def test_bytes_wire_format_is_strict(wire):
    with pytest.raises(ValueError):
        codec.loads(wire)
