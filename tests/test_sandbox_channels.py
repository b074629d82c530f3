"""Verdicts that do not depend on what ran before (issue 29): nothing one job sets is observable by a later job.

Each probe *reads* every channel of this kind we know of (pid numbering, the job directory's inode numbers, the
parent, /proc, the state it inherits from the zygote's heap) and prints what it saw, then *writes* to the same
channels an amount that depends on the probe (threads, forked processes, files made and deleted, processes left
behind, its exit status, memory touched). The same multiset of probes, with legitimate programs between them,
is judged in two orders and with 1 and 2 workers: every verdict, printed observations included, must be the same.
Runs in the tiers that claim isolation between jobs (bwrap, unshare); the seccomp tier says it does not.
"""

from __future__ import annotations

import os
import random
import re
import textwrap
from pathlib import Path

import pytest

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tl_eval.harness.verify.code_job import CodeJob, CodeTest
from tests.conftest_sandbox import SENTINEL, job

FRESH_TIERS = ["bwrap", "unshare"]

PROBE = '''
import gc, os, sys, threading, time

def _observe():
    # State inherited from the zygote's heap, read first, before this job's own threads and forks move it: what
    # the zygote's work for earlier jobs left there. (Not sys.getallocatedblocks(): it moves by a block or two with
    # how the job's own request bytes arrived and with the worker's start-up.)
    seen = {"heap": (gc.get_count(), id(object()) % 4096)}
    seen["pid"], seen["ppid"] = os.getpid(), os.getppid()
    t = threading.Thread(target=lambda: None)
    t.start()
    seen["thread"] = t.native_id
    t.join()
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    seen["child"] = child
    d = os.environ.get("TMPDIR", ".")
    seen["dir"] = sorted(os.listdir(d))
    seen["dir_ino"] = os.stat(d).st_ino
    with open(os.path.join(d, "probe"), "w") as fh:
        fh.write("x")
    seen["file_ino"] = os.stat(os.path.join(d, "probe")).st_ino
    os.unlink(os.path.join(d, "probe"))
    for path in ("/proc", "/proc/self/stat", "/proc/stat", "/proc/loadavg", "/proc/1/stat", "/sys/fs/cgroup"):
        try:
            with open(path, "rb") as fh:
                seen[path] = fh.read(200).decode("ascii", "replace")
        except OSError as e:
            seen[path] = type(e).__name__
    return seen

def _write(k):
    d = os.environ.get("TMPDIR", ".")
    for i in range(k * 7):  # files made and deleted: the tmpfs inode counter
        p = os.path.join(d, f"w{i}")
        open(p, "w").close()
        os.unlink(p)
    open(os.path.join(d, f"left-{k}"), "w").close()
    threads = [threading.Thread(target=lambda: None) for _ in range(k * 5)]  # the pid counter
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(k):
        if os.fork() == 0:  # a process left behind, in a session of its own
            os.setsid()
            time.sleep(60)
            os._exit(0)
    junk = [bytearray(1 << 20) for _ in range(k * 8)]  # memory touched (page faults)
    del junk

def f(k):
    seen = _observe()
    print(sorted(seen.items()))
    _write(k)
    if k % 2:
        sys.stdout.flush()
        os._exit(40 + k)  # the exit status reaches whoever reaps this process
    return k
'''


def probe(k: int) -> CodeJob:
    # The test fails on purpose: a failing verdict carries the program's output, so the observations are part of
    # the verdict that must not change.
    return job(PROBE, f"assert f({k}) == -1", time_limit_s=10.0)


LEGIT = [
    job("def f(x):\n    return sorted(x)\n", ["assert f([3, 1, 2]) == [1, 2, 3]", "assert f([]) == []"]),
    job("def f(n):\n    return sum(range(n))\n", "assert f(10) == 45"),
    job("def f(s):\n    return s[::-1]\n", "assert f('abc') == 'cba'"),
    SENTINEL,
]


def multiset() -> list[CodeJob]:
    jobs = [probe(k) for k in range(5)] * 2 + LEGIT * 2
    random.Random(29).shuffle(jobs)
    return jobs


def outcome(v) -> tuple:
    return v.status, v.failing_test, v.stderr, v.details.get("reason"), v.details.get("tests_passed")


@pytest.fixture(scope="module", params=FRESH_TIERS)
def tier(request):
    return request.param


def _verify(monkeypatch, tier: str, jobs: list[CodeJob], workers: int) -> list[tuple]:
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
    with CodeVerifier(SandboxLimits(workers=workers, memory_mb=512)) as v:
        assert v.isolation["jobs_independent"], v.isolation
        return [outcome(x) for x in v.verify(jobs)]


HEAP = re.compile(r"\('heap', \(\(\d+, \d+, \d+\), \d+\)\)")


def _heap_apart(verdicts: list[tuple]) -> tuple[list[tuple], set[str]]:
    """The verdicts with each probe's heap fingerprint taken out, and the set of fingerprints seen.

    The fingerprint is compared among the jobs of one worker: it also reflects that worker's own start-up (its
    configuration's text, the host's descriptor numbers), which differs between workers and says nothing of any
    job; what an earlier job left in the zygote would make it differ between jobs of the same worker."""
    fingerprints = {m.group(0) for v in verdicts for m in HEAP.finditer(v[2])}
    return [(v[0], v[1], HEAP.sub("('heap', ...)", v[2]), *v[3:]) for v in verdicts], fingerprints


def test_order_and_workers_do_not_change_any_verdict(monkeypatch, tier):
    jobs = multiset()
    first, heap_first = _heap_apart(_verify(monkeypatch, tier, jobs, 1))
    backwards, heap_backwards = _heap_apart(_verify(monkeypatch, tier, jobs[::-1], 1)[::-1])
    two, _ = _heap_apart(_verify(monkeypatch, tier, jobs, 2))
    assert len(heap_first) == 1 and len(heap_backwards) == 1, (heap_first, heap_backwards)
    for i, (a, b, c) in enumerate(zip(first, backwards, two)):
        assert a == b == c, (i, a, b, c)
    # The probes did run and saw a fresh world (not just the same failure three times).
    seen = first[jobs.index(probe(3))][2]
    assert "('pid', 1)" in seen and "('ppid', 0)" in seen and "('dir', [])" in seen, seen
    assert "('/proc', 'PermissionError')" in seen and "('/proc/stat', 'PermissionError')" in seen, seen
    assert all(o[0] == "pass" for j, o in zip(jobs, first) if j in LEGIT)
    odd = [o for j, o in zip(jobs, first) if j == probe(1)]
    assert odd and all("exited before the tests finished" in o[3] for o in odd)


def test_same_program_same_verdict_after_any_history(monkeypatch, tier):
    """The issue's attack in small: one program judged after different histories always gets the same verdict."""
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
    target = probe(0)
    with CodeVerifier(SandboxLimits(workers=1, memory_mb=512)) as v:
        verdicts = [outcome(x) for x in v.verify([target, probe(4), target, probe(3), probe(3), target, target])]
    first = verdicts[0]
    assert [verdicts[i] for i in (2, 5, 6)] == [first] * 3


def _worker_and_zygote(verifier: CodeVerifier) -> tuple[int, int]:
    """The zygote: the worker's only child (the host sees the worker as a descendant of bwrap or unshare)."""
    root = verifier._pool.handles[0].proc.pid
    todo, found = [root], []
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            kids = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
        except OSError:
            continue
        if b"harness.verify.sandbox.worker" in cmd and Path(f"/proc/{pid}/comm").read_text().startswith("python"):
            found.append(pid)  # (unshare's own command line names the worker too)
        todo += kids
    worker = min(found)  # the zygote is forked from the worker, so it carries the same command line
    zygotes = [p for p in found if p != worker and int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == worker]
    assert len(zygotes) == 1, found
    return worker, zygotes[0]


def test_zygote_memory_holds_nothing_of_any_job(monkeypatch, tier):
    """Read from the host, the zygote's whole memory (what every child inherits) holds none of the jobs' text:
    not their tests, references or programs, nor what the programs printed or returned."""
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
    mark = "tl-zygote-probe-" + os.urandom(6).hex()
    jobs = [CodeJob(solution=f"def f(x):\n    print({mark + '-out'!r})\n    return {mark + '-ret'!r}\n",
                    entry_point="f", context=f"REF = {mark + '-ref'!r}\n", time_limit_s=5.0,
                    tests=(CodeTest("t0", f"assert f(1) == {mark + '-ret'!r}  # {mark}-test"),))] * 3
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        assert [x.status for x in v.verify(jobs)] == ["pass"] * 3
        worker, zygote = _worker_and_zygote(v)
        assert _memory_hits(worker, mark), "the search is real: the worker, which ran the tests, holds the mark"
        assert _memory_hits(zygote, mark) == []


def _mappings(pid: int, writable: bool = False):
    """(maps line, contents) of each readable (or writable) mapping of the process, read from the host."""
    with open(f"/proc/{pid}/maps") as fh, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in fh:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if ("w" if writable else "r") not in fields[1] or hi - lo > 1 << 30:
                continue
            try:
                mem.seek(lo)
                yield line.strip(), mem.read(hi - lo)
            except OSError:
                continue


def _memory_hits(pid: int, mark: str) -> list[str]:
    return [line for line, data in _mappings(pid) if mark.encode() in data]


def test_seccomp_tier_says_jobs_are_not_independent(monkeypatch):
    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", "seccomp")
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        assert v.isolation["jobs_independent"] is False
        assert any("verdicts may depend on what ran before" in w for w in v.warnings)


def test_no_object_numbered_by_a_host_counter_can_be_made(monkeypatch):
    """What a job could create to move a counter that every later job reads back (inode numbers of pipes, socket
    pairs and anonymous files; the pidfs sequence) is refused, in every tier; a program still gets threads."""
    for tier in ("bwrap", "seccomp"):
        monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
        with CodeVerifier(SandboxLimits(workers=1)) as v:
            (probe_v, good), = [v.verify([job(textwrap.dedent('''
                import ctypes, os, socket, threading
                def f():
                    made = []
                    libc = ctypes.CDLL(None, use_errno=True)
                    for name, call in (("pipe", os.pipe), ("socketpair", socket.socketpair),
                                       ("memfd", lambda: os.memfd_create("x")),
                                       ("pidfd", lambda: libc.syscall(434, os.getpid(), 0) >= 0 or 1 / 0),
                                       ("pidfd clone", lambda: libc.syscall(56, 0x1000 | 17, 0, 0, 0, 0) >= 0 or 1 / 0),
                                       ("memfd_secret", lambda: libc.syscall(447, 0) >= 0 or 1 / 0)):
                        try:
                            call()
                            made.append(name)
                        except (OSError, ZeroDivisionError):
                            pass
                    t = threading.Thread(target=lambda: None); t.start(); t.join()
                    return made
                '''), "assert f() == []"), SENTINEL])]
            assert probe_v.status == "pass", (tier, probe_v.details, probe_v.stderr)
            assert good.status == "pass"


def _children(zygote: int) -> set[int]:
    try:
        return set(map(int, Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()))
    except OSError:
        return set()


def _job_child(zygote: int, before: set[int]) -> tuple[int, int] | None:
    """(host pid, pid in the zygote's namespace) of the zygote's running job child: alive, pid 1 of a namespace of
    its own, and not one of the children it had `before` the job (the last job's stays a zombie until the next
    fork reaps it)."""
    for kid in _children(zygote) - before:
        try:
            status = dict(x.split(":", 1) for x in Path(f"/proc/{kid}/status").read_text().splitlines() if ":" in x)
        except OSError:
            continue  # gone between the two reads
        ns = status.get("NSpid", "").split()
        if status.get("State", "").split()[:1] not in (["Z"], ["X"]) and len(ns) == 3 and ns[2] == "1":
            return kid, int(ns[1])
    return None


def _writable_words(pid: int, value: int) -> int:
    """How often `value` is stored as an aligned 32-bit word in the process's writable memory."""
    import struct

    word, n = struct.pack("<i", value), 0
    for _, data in _mappings(pid, writable=True):
        i = data.find(word)
        while i >= 0:
            n += i % 4 == 0
            i = data.find(word, i + 1)
    return n


def test_no_child_inherits_an_earlier_childs_pid(monkeypatch, tier):
    """The zygote forks and reaps through ctypes, and its C stack is reused by the next fork: read from the host,
    a running child's memory holds no copy of the previous child's pid (which counts every process earlier jobs
    made). Jobs of 3000 threads first push that pid far above the small numbers found everywhere."""
    import threading
    import time

    monkeypatch.setenv("TL_EVAL_SANDBOX_TIER", tier)
    push = job("import threading\ndef f():\n    for _ in range(3000):\n        t = threading.Thread(target=lambda: None)\n"
               "        t.start()\n        t.join()\n    return 1\n", "assert f() == 1", time_limit_s=30.0)
    slow = job("import time\ndef f():\n    time.sleep(1.5)\n    return 1\n", "assert f() == 1", time_limit_s=10.0)

    def while_running(v, zygote, j, scan: bool):
        """(the job child's host pid and pid in the zygote's namespace, copies of `earlier` in its memory half a
        second in)."""
        before = _children(zygote)
        done = threading.Thread(target=v.verify, args=([j],))
        done.start()
        found = None
        while found is None and done.is_alive():
            found = _job_child(zygote, before)
        assert found is not None, "the job ended before its child was seen"
        copies = None
        if scan:
            time.sleep(0.5)
            copies = _writable_words(found[0], earlier)
        done.join()
        return found, copies

    with CodeVerifier(SandboxLimits(workers=1, memory_mb=512)) as v:
        assert [x.status for x in v.verify([push])] == ["pass"]
        worker, zygote = _worker_and_zygote(v)
        (_, earlier), _ = while_running(v, zygote, push, scan=False)
        assert earlier > 3000
        (_, later), copies = while_running(v, zygote, slow, scan=True)
        assert later > earlier + 3000  # the pid really counts what earlier jobs made
        assert copies == 0
        assert _writable_words(worker, later) > 0, "the search is real: the worker holds the pid it opened a pidfd of"
