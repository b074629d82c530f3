"""The long-lived worker: reads jobs from the host, forks one confined child per test, judges, kills, cleans up.

Run as `python -m harness.verify.sandbox.worker CONFIG_JSON` inside the tier's launcher (bwrap, unshare, or
nothing). It never executes candidate code itself; candidate code runs only in forked, confined children.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback

from harness.verify.sandbox import judge, landlock, seccomp
from harness.verify.sandbox.child import serve
from harness.verify.sandbox.confine import ChildLimits, confine
from harness.verify.sandbox.protocol import FrameReader, read_frame_blocking, write_frame

# Modules candidates commonly import: loaded once here, so each forked child finds them in sys.modules.
PRELOAD = ("math", "cmath", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
           "random", "hashlib", "statistics", "fractions", "decimal", "copy", "operator", "datetime", "json",
           "socket", "array", "struct", "numbers", "threading", "glob", "textwrap", "unicodedata", "dataclasses",
           "enum", "time", "calendar", "abc", "io", "sys", "os", "shutil", "subprocess", "ctypes", "signal", "gc",
           "types", "inspect", "traceback", "queue", "base64", "binascii", "pprint", "difflib", "secrets")

PROBE_SOLUTION = '''
import os, socket
def probe():
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        sock = False
    except OSError:
        sock = True
    try:
        open("/tl_eval_probe_write", "w").close()
        os.unlink("/tl_eval_probe_write")
        write_blocked = False
    except OSError:
        write_blocked = True
    stdlib_readable = os.access(os.path.dirname(os.__file__), os.R_OK | os.X_OK)
    cap_eff = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
    return {"uid": os.getuid(), "socket_blocked": sock, "root_write_blocked": write_blocked, "cap_eff": cap_eff,
            "stdlib_readable": stdlib_readable}
'''


class Unhealthy(Exception):
    """The worker cannot guarantee a clean slate for the next test; it exits and the host starts a new one."""


class Worker:
    def __init__(self, config: dict):
        self.uid = config.get("uid")
        self.use_landlock = bool(config.get("landlock")) and landlock.abi_version() > 0
        self.use_seccomp = bool(config.get("seccomp")) and seccomp.supported()
        self.pidns = bool(config.get("pidns"))
        self.tier = config.get("tier", "?")
        self.base = tempfile.mkdtemp(prefix="tl-sandbox-")
        os.chmod(self.base, 0o711)  # the unprivileged child must traverse into its own dir
        if self.uid is not None and os.geteuid() != 0:
            self.uid = None  # only root can drop to another uid; the host's probe reports this
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come back here

    # --- one child ---------------------------------------------------------------------------------------
    def run_child(self, solution: str, entry_point: str, limit_s: float, limits: dict, trusted) -> tuple[dict, float]:
        start = time.monotonic()
        deadline = start + limit_s
        tmpdir = tempfile.mkdtemp(dir=self.base)
        if self.uid is not None:
            os.chown(tmpdir, self.uid, self.uid)
        os.chmod(tmpdir, 0o700)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        setup_r, setup_w = os.pipe()
        child_limits = ChildLimits(memory_mb=int(limits["memory_mb"]), file_size_mb=int(limits["file_size_mb"]),
                                   cpu_s=math.ceil(limit_s) + 1)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(solution, entry_point, tmpdir, child_limits, req_r, resp_w, out_w, setup_w)
        for fd in (req_r, resp_w, out_w, setup_w):
            os.close(fd)
        link = judge.ChildLink(pid, req_w, resp_r, out_r, deadline, int(limits["output_bytes"]))
        try:
            if not _confirmed(setup_r, deadline):
                outcome = {"status": "sandbox_error", "reason": "the child could not confine itself",
                           "stderr": _read_some(out_r), "failing_line": None}
            else:
                outcome = trusted(link)
        finally:
            for fd in (req_w, resp_r, link.out_r, setup_r):
                if fd >= 0:
                    os.close(fd)
            status = self.kill_all(pid)
            shutil.rmtree(tmpdir, ignore_errors=True)
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
            if outcome["status"] == "fail":
                outcome.update(status="timeout", reason="CPU time limit reached")
        return outcome, time.monotonic() - start

    def _child(self, solution, entry_point, tmpdir, child_limits, req_r, resp_w, out_w, setup_w) -> None:
        code = 70
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            devnull = os.open(os.devnull, os.O_RDWR)
            keep = [os.dup(fd) for fd in (req_r, resp_w, out_w, setup_w, devnull)]
            for i, fd in enumerate(keep):
                os.dup2(fd, 200 + i)
            os.closerange(0, 200)
            os.closerange(205, 65536)
            os.dup2(204, 0)
            os.dup2(202, 1)
            os.dup2(202, 2)
            for i in range(4):
                os.dup2(200 + i, 3 + i)
            os.closerange(200, 205)
            confine(tmpdir, self.uid, child_limits, self.use_landlock, self.use_seccomp)
            os.write(6, b"1")
            os.close(6)  # closed before any candidate code runs: the candidate cannot fake confinement
            serve(solution, entry_point, 3, 4)
            code = 0
        except BaseException:
            try:
                os.write(2, traceback.format_exc().encode()[-2000:])
            except BaseException:
                pass
        finally:
            os._exit(code)

    def kill_all(self, pid: int) -> int | None:
        """SIGKILL the child and every descendant (setsid ones included), reap them all; the child's wait status."""
        status = None
        give_up = time.monotonic() + 10
        self._signal_everyone(pid)
        try:
            status = os.waitpid(pid, 0)[1]  # SIGKILLed: returns at once, and spares the polling loop below
        except ChildProcessError:
            pass
        while True:
            self._signal_everyone(pid)
            while True:
                try:
                    p, st = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return status
                if p == 0:
                    break
                if p == pid:
                    status = st
            if time.monotonic() > give_up:
                raise Unhealthy("descendants of a test survived SIGKILL for 10 s")
            time.sleep(0.0005)

    def _signal_everyone(self, pid: int) -> None:
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.pidns:
            # Alone in our PID namespace: -1 reaches every process here but init and ourselves.
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.uid is not None:
            # A setsid() grandchild has left the process group, but not the uid, which is ours alone.
            helper = os.fork()
            if helper == 0:
                try:
                    os.setresuid(self.uid, self.uid, self.uid)
                    os.kill(-1, signal.SIGKILL)
                except BaseException:
                    pass
                os._exit(0)
        else:
            for child in _children_of(os.getpid()):
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # --- one job -----------------------------------------------------------------------------------------
    def run_job(self, job: dict) -> dict:
        start = time.monotonic()
        base = {"nonce": job["nonce"], "failing_test": None, "stderr": "",
                "details": {"tier": self.tier, "test_seconds": []}}
        try:
            context = compile(job.get("context", ""), "<context>", "exec")
        except BaseException as e:
            return {**base, "status": "sandbox_error", "seconds": 0.0,
                    "details": {**base["details"], "reason": f"the task's context does not compile: {e}"}}
        entry = job["entry_point"]
        cap = float(job["sample_cap"])
        outcome = {"status": "pass", "reason": "", "stderr": "", "failing_line": None}
        failing = None
        for (name, code), limit in zip(job["tests"], job["time_limits"]):
            remaining = cap - (time.monotonic() - start)
            if remaining <= 0:
                outcome = {"status": "timeout", "reason": "per-sample time cap reached", "stderr": "", "failing_line": None}
                failing = name
                break
            outcome, secs = self.run_child(job["solution"], entry, min(float(limit), remaining), job["limits"],
                                           lambda link, code=code: judge.run_test(link, context, code, entry))
            base["details"]["test_seconds"].append(round(secs, 6))
            if outcome["status"] != "pass":
                failing = None if outcome["status"] == "compile_error" else name
                break
        details = base["details"]
        if outcome["status"] != "pass":
            details["reason"] = outcome["reason"]
            if outcome.get("failing_line"):
                details["failing_line"] = outcome["failing_line"]
        return {**base, "status": outcome["status"], "failing_test": failing, "stderr": outcome["stderr"],
                "seconds": time.monotonic() - start, "details": details}

    def probe(self) -> dict:
        def trusted(link):
            first = link.wait_frame()
            if first.get("kind") != "ready":
                raise RuntimeError(f"probe child failed: {first}")
            return {"status": "pass", "value": link.call((), {})}
        limits = {"memory_mb": 1024, "file_size_mb": 1, "output_bytes": 10000}
        out, _ = self.run_child(PROBE_SOLUTION, "probe", 10.0, limits, trusted)
        if out.get("status") != "pass":
            raise RuntimeError(f"probe child failed: {out}")
        return {"tier": self.tier, "pid": os.getpid(), "pidns": self.pidns, "landlock": self.use_landlock,
                "landlock_abi": landlock.abi_version(), "seccomp": self.use_seccomp, "uid": self.uid,
                "child": out["value"]}


def _confirmed(setup_r: int, deadline: float) -> bool:
    ready = select.select([setup_r], [], [], max(deadline - time.monotonic(), 0.0))[0]
    return bool(ready) and os.read(setup_r, 1) == b"1"


def _read_some(fd: int) -> str:
    if fd < 0 or not select.select([fd], [], [], 0.05)[0]:
        return ""
    return os.read(fd, 2000).decode("utf-8", "replace")


def _children_of(ppid: int) -> list[int]:
    """Live children, read from /proc: the fallback when neither a PID namespace nor a private uid is available."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(b")", 1)[1].split()[1]) == ppid:
                out.append(int(entry))
    return out


def main() -> None:
    config = json.loads(sys.argv[1])
    for name in PRELOAD:
        __import__(name)
    host_in, host_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # prints from trusted test code must not corrupt the host channel
    worker = Worker(config)
    try:
        write_frame(host_out, {"op": "hello", **worker.probe()})
    except BaseException as e:
        write_frame(host_out, {"op": "hello", "error": f"{type(e).__name__}: {e}"})
        return
    reader = FrameReader()
    while True:
        msg = read_frame_blocking(host_in, reader)
        if msg is None:
            break
        try:
            reply = worker.run_job(msg)
        except Unhealthy as e:
            write_frame(host_out, {"nonce": msg.get("nonce"), "status": "sandbox_error", "failing_test": None,
                                   "stderr": "", "seconds": 0.0, "details": {"reason": str(e)}})
            break
        write_frame(host_out, reply)
    shutil.rmtree(worker.base, ignore_errors=True)


if __name__ == "__main__":
    main()
