"""Resources are the job's, never the host's or the worker's (issue 29): disk reserved with fallocate counts
against the job's limits in every tier, and a reply the worker must decode cannot grow the worker's memory past
a bound this file measures. Each attack is followed by a legitimate program on the same worker, which passes."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tests.conftest_sandbox import SENTINEL, job, sandbox_processes

# What hostile replies may add to the worker's peak RSS (VmHWM). Measured on 2026-12-07 (AMD EPYC, 2 cores,
# Python 3.11): 13.5 -> 21.0 MB (bwrap), 20.5 -> 28.3 MB (seccomp, full preload) for every shape below; before
# the reply limits one 450 kB reply raised it from 13 to 34 MB and a 64 MiB frame was accepted.
WORKER_GROWTH_MB = 24


@pytest.fixture(scope="module", params=["bwrap", "seccomp"])
def verifier(request):
    mp = pytest.MonkeyPatch()
    mp.setenv("TL_EVAL_SANDBOX_TIER", request.param)
    v = CodeVerifier(SandboxLimits(workers=1, memory_mb=512, file_size_mb=16, disk_mb=64))
    mp.undo()
    yield v
    v.close()


def attack(verifier, solution: str, tests, expect, **kw):
    bad, good = verifier.verify([job(textwrap.dedent(solution), tests, **kw), SENTINEL])
    assert bad.status in ({expect} if isinstance(expect, str) else expect), (bad.status, bad.details, bad.stderr)
    assert good.status == "pass", (good.status, good.details)
    assert sandbox_processes() == []
    return bad


def test_fallocate_cannot_reserve_host_disk(verifier):
    """fallocate(KEEP_SIZE) of 2 GiB with file_size_mb 16 (ext4 does not apply RLIMIT_FSIZE past the end of a
    file): refused; posix_fallocate falls back to writing, which the per-file limit stops."""
    free_before = shutil.disk_usage("/tmp").free
    v = attack(verifier, """
        import ctypes, os
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
            got = []
            fd = os.open("big", os.O_CREAT | os.O_RDWR, 0o600)
            for mode in (1, 0, 3):  # KEEP_SIZE, plain, PUNCH_HOLE|KEEP_SIZE
                if libc.fallocate(fd, mode, 0, 2 << 30) == 0:
                    got.append(("fallocate", mode))
            try:
                os.posix_fallocate(fd, 0, 64 << 20)
                got.append("posix_fallocate")
            except OSError:
                pass
            return got, os.fstat(fd).st_blocks * 512
        """, "assert f() == 1", "fail", time_limit_s=10.0)
    assert "assertion failed" in v.details["reason"]
    assert shutil.disk_usage("/tmp").free > free_before - (256 << 20)


def test_fallocate_result_is_nothing_reserved(verifier):
    attack(verifier, """
        import ctypes, os
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
            fd = os.open("big", os.O_CREAT | os.O_RDWR, 0o600)
            r = libc.fallocate(fd, 1, 0, 2 << 30)
            return r, ctypes.get_errno(), os.fstat(fd).st_blocks * 512 <= 16 << 20
        """, "assert f() == (-1, 95, True)", "pass")  # EOPNOTSUPP


def _worker_pid(verifier) -> int:
    todo, found = [verifier._pool.handles[0].proc.pid], []
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            comm = Path(f"/proc/{pid}/comm").read_text()
            todo += [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
        except OSError:
            continue
        if b"harness.verify.sandbox.worker" in cmd and comm.startswith("python"):
            found.append(pid)
    return min(found)  # the worker; the zygote and children are forked from it, later


def _peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024


# Replies just under and over the limits, in the shapes that cost the worker most per byte when decoded.
HOSTILE_REPLIES = {
    "string": ('"x" * 1_000_000', "pass_or_fail"),
    "nested lists": ("[[] for _ in range(49_000)]", "pass_or_fail"),
    "floats": ("[0.5] * 49_000", "pass_or_fail"),
    "ints": ("list(range(10**6, 10**6 + 120_000))", "pass_or_fail"),
    "too many lists": ("[[] for _ in range(60_000)]", "too large"),
    "too many bytes": ('"x" * 3_000_000', "too large"),
    "deep": ("eval('[' * 90 + ']' * 90)", "pass_or_fail"),
}


def test_worker_memory_is_bounded_under_hostile_replies(verifier):
    verifier.verify([SENTINEL] * 3)
    worker = _worker_pid(verifier)
    before = _peak_mb(worker)
    jobs = [job(f"def f():\n    return {expr}\n", "assert f() == 1", time_limit_s=10.0)
            for expr, _ in HOSTILE_REPLIES.values()] * 2
    verdicts = verifier.verify(jobs + [SENTINEL])
    assert verdicts[-1].status == "pass"
    for (name, (_, kind)), v in zip(list(HOSTILE_REPLIES.items()) * 2, verdicts):
        assert v.status == "fail", (name, v.status, v.details)
        if kind == "too large":
            assert "too large to judge" in v.details["reason"], (name, v.details)
    growth = _peak_mb(worker) - before
    print(f"worker peak RSS {before:.1f} MB -> {before + growth:.1f} MB under the hostile replies ({verifier.tier})")
    assert growth < WORKER_GROWTH_MB, growth
    assert verifier._pool.handles[0].proc.pid is not None


def test_large_legitimate_return_values_still_pass(verifier):
    attack(verifier, "def f(n):\n    return list(range(n))\n", "assert f(100_000) == list(range(100_000))", "pass",
           time_limit_s=10.0)
    attack(verifier, "def f(n):\n    return 'ab' * n\n", "assert f(200_000) == 'ab' * 200_000", "pass",
           time_limit_s=10.0)


def test_disk_filler_of_many_files(verifier):
    """Many files under the per-file limit: bounded by the job's tmpfs where the tier has one (disk_mb), and the
    next job starts on an empty directory either way."""
    v = attack(verifier, """
        import os
        def f():
            total = 0
            for i in range(12):
                try:
                    with open(f"part{i}", "wb") as fh:
                        fh.write(b"x" * (15 << 20))
                    total += 15
                except OSError:
                    break
            for name in os.listdir("."):
                os.unlink(name)
            return total
        """, "assert f() <= 64", {"pass", "fail"}, time_limit_s=20.0)
    if verifier.isolation["job_dir_size_limit"]:
        assert v.status == "pass", v.details
