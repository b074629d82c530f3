"""The long-lived worker: reads jobs from the host, forks one confined child per job, judges, kills, cleans up.

Run as `python -m harness.verify.sandbox.worker CONFIG_JSON` inside the tier's launcher (bwrap, unshare, or
nothing). It never executes candidate code itself; candidate code runs only in forked, confined children.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import math
import os
import signal
import sys
import time
import traceback

from harness.verify.sandbox import judge, landlock, seccomp
from harness.verify.sandbox.child import serve
from harness.verify.sandbox.confine import ChildLimits, confine
from harness.verify.sandbox.protocol import FrameReader, read_frame_blocking, write_frame

# Modules candidates commonly import, loaded once here so each forked child finds them in sys.modules. Every
# extension module the worker holds makes each fork and exit slower (page tables and mappings are copied and torn
# down per child: ~2 ms per child with the full list against ~0.7 ms with the lean one), so where the child's uid
# can read the standard library, only the lean list is preloaded and children import anything else themselves.
PRELOAD_LEAN = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing", "copy",
                "operator", "json", "struct", "numbers", "enum", "time", "abc", "io", "sys", "os", "types", "textwrap",
                "signal", "gc", "traceback")
# Where it cannot (a Python under a mode-700 home outside bwrap), candidates can only use what is preloaded.
PRELOAD_FULL = PRELOAD_LEAN + (
    "random", "dataclasses", "base64", "binascii", "cmath", "hashlib", "statistics", "fractions", "decimal", "datetime", "socket", "array", "threading", "glob",
    "unicodedata", "calendar", "shutil", "subprocess", "ctypes", "inspect", "queue", "pprint", "difflib", "secrets")


def stdlib_readable_by_others() -> bool:
    """Whether an unrelated uid can import from the standard library (every directory on the way searchable)."""
    lib = os.path.dirname(os.path.realpath(os.__file__))
    for d in (lib, os.path.join(lib, "lib-dynload")):
        if os.path.isdir(d) and (os.stat(d).st_mode & 0o005) != 0o005:
            return False
    while True:
        if not os.stat(lib).st_mode & 0o001:
            return False
        parent = os.path.dirname(lib)
        if parent == lib:
            return True
        lib = parent


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
    """The worker cannot guarantee a clean slate for the next job; it exits and the host starts a new one."""


@functools.lru_cache(maxsize=64)  # small: every cached object is copied into each fork
def _compile_trusted(source: str, filename: str):
    # Contexts and tests repeat for every sample of a problem; code objects are immutable, so reuse is safe.
    return compile(source, filename, "exec")


class Worker:
    def __init__(self, config: dict):
        self.uid = config.get("uid")
        self.pidns = bool(config.get("pidns"))
        self.tier = config.get("tier", "?")
        self.preload = config.get("preload", "lean")
        if self.uid is not None and os.geteuid() != 0:
            self.uid = None  # only root can drop to another uid; the host's probe reports this
        self.base = _private_dir()
        # One temp dir for the worker's life, emptied after every job: the same inode, so the Landlock ruleset
        # that allows writes beneath it is built once; only this worker's children (one at a time) use it.
        self.tmpdir = os.path.join(self.base, "job")
        os.mkdir(self.tmpdir, 0o700)
        if self.uid is not None:
            os.chown(self.tmpdir, self.uid, self.uid)
        self.ruleset = None
        if config.get("landlock") and landlock.abi_version() > 0:
            self.ruleset = landlock.make_ruleset([self.tmpdir])
            os.set_inheritable(self.ruleset, False)
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come back here
        judge.install_alarm()
        self.seccomp = bool(config.get("seccomp")) and seccomp.supported()
        if self.seccomp:
            # On the worker itself, once: children inherit it, which spares each one loading it. The worker needs
            # none of the calls it denies (sockets, ptrace, mounts, namespaces, bpf, io_uring, kernel admin).
            seccomp.Filter().install()

    # --- the child ---------------------------------------------------------------------------------------
    def spawn(self, solution: str, entry_point: str, cpu_s: int, limits: dict) -> judge.ChildLink:
        """Fork the child that confines itself, runs `solution` and answers calls to `entry_point`."""
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        setup_r, setup_w = os.pipe()
        child_limits = ChildLimits(memory_mb=int(limits["memory_mb"]), file_size_mb=int(limits["file_size_mb"]),
                                   cpu_s=cpu_s)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(solution, entry_point, child_limits, req_r, resp_w, out_w, setup_w)
        for fd in (req_r, resp_w, out_w, setup_w):
            os.close(fd)
        os.set_blocking(setup_r, False)
        return judge.ChildLink(pid, req_w, resp_r, out_r, setup_r, int(limits["output_bytes"]))

    def finish(self, link: judge.ChildLink) -> int | None:
        """Close the pipes, kill the child and every descendant, empty the temp dir; the child's wait status."""
        for fd in (link.req_w, link.resp_r, link.out_r, link.setup_r):
            if fd >= 0:
                os.close(fd)
        status = self.kill_all(link.pid)
        self.empty_tmpdir()
        return status

    def empty_tmpdir(self) -> None:
        """Remove whatever the last job left; a leftover would reach the next job, so failing here is fatal."""
        with os.scandir(self.tmpdir) as it:
            leftovers = [(e.path, e.is_dir(follow_symlinks=False)) for e in it]
        for path, is_dir in leftovers:
            if is_dir:
                import shutil  # only on this rare path: shutil drags compression libraries into every later fork

                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        if leftovers and os.listdir(self.tmpdir):
            raise Unhealthy("could not empty the sandbox temp dir")
        os.chmod(self.tmpdir, 0o700)  # the child owns it and may have changed its mode

    def _child(self, solution, entry_point, child_limits, req_r, resp_w, out_w, setup_w) -> None:
        code = 70
        try:
            gc.freeze()  # the inherited heap is never collected here: no copy-on-write faults from gc scans
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            devnull = os.open(os.devnull, os.O_RDWR)
            keep = [req_r, resp_w, out_w, setup_w, devnull] + ([self.ruleset] if self.ruleset is not None else [])
            keep = [os.dup(fd) for fd in keep]
            for i, fd in enumerate(keep):
                os.dup2(fd, 200 + i)
            os.closerange(0, 200)
            os.closerange(200 + len(keep), 65536)
            os.dup2(204, 0)
            os.dup2(202, 1)
            os.dup2(202, 2)
            for i in range(4):
                os.dup2(200 + i, 3 + i)
            ruleset = 205 if self.ruleset is not None else None
            confine(self.tmpdir, self.uid, child_limits, ruleset)
            os.closerange(200, 206)
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
            # As subreaper we inherit every orphan, so "no children left" means every descendant is gone.
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
            self._signal_everyone(pid)  # some still live (forked while the first signal went out): again
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
        """All tests of one job against one fresh child, stopping at the first test that does not pass."""
        start = time.monotonic()
        base = {"nonce": job["nonce"], "failing_test": None, "stderr": "",
                "details": {"tier": self.tier, "test_seconds": []}}
        try:
            context = _compile_trusted(job.get("context", ""), "<context>")
            tests = [(name, src, _compile_trusted(src, "<test>")) for name, src in job["tests"]]
        except BaseException as e:
            return {**base, "status": "sandbox_error", "seconds": 0.0,
                    "details": {**base["details"], "reason": f"the task's context or tests do not compile: {e}"}}
        entry = job["entry_point"]
        cap = float(job["sample_cap"])
        limits = [float(x) for x in job["time_limits"]]
        outcome = {"status": "pass", "reason": "", "stderr": "", "failing_line": None}
        failing = None
        # The CPU limit spans the child's life; each test's own wall deadline is enforced separately.
        cpu_s = math.ceil(min(cap, sum(limits) if limits else cap)) + 1
        link = self.spawn(job["solution"], entry, cpu_s, job["limits"]) if tests else None
        try:
            for i, ((name, src, code), limit) in enumerate(zip(tests, limits)):
                t0 = time.monotonic()
                remaining = cap - (t0 - start)
                if remaining <= 0:
                    outcome = {"status": "timeout", "reason": "per-sample time cap reached", "stderr": "",
                               "failing_line": None}
                    failing = name
                    break
                link.begin_test(t0 + min(limit, remaining))
                outcome = judge.run_test(link, context, code, src, entry, load=i == 0)
                base["details"]["test_seconds"].append(round(time.monotonic() - (start if i == 0 else t0), 6))
                if outcome["status"] != "pass":
                    failing = None if outcome["status"] == "compile_error" else name
                    break
        finally:
            status = self.finish(link) if link is not None else None
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
            if outcome["status"] == "fail":
                outcome.update(status="timeout", reason="CPU time limit reached")
        details = base["details"]
        # Tests stop at the first failure (as evalplus does); rewards read the share passed before it.
        details["tests_total"] = len(tests)
        details["tests_passed"] = len(tests) if outcome["status"] == "pass" else \
            sum(1 for (name, _, _) in tests[: len(details["test_seconds"])] if name != failing)
        if outcome["status"] != "pass":
            details["reason"] = outcome["reason"]
            if outcome.get("failing_line"):
                details["failing_line"] = outcome["failing_line"]
        return {**base, "status": outcome["status"], "failing_test": failing, "stderr": outcome["stderr"],
                "seconds": time.monotonic() - start, "details": details}

    def probe(self) -> dict:
        limits = {"memory_mb": 1024, "file_size_mb": 1, "output_bytes": 10000}
        link = self.spawn(PROBE_SOLUTION, "probe", 11, limits)
        try:
            link.begin_test(time.monotonic() + 10.0)
            value = link.call((), {})
        except judge.Stop as e:
            raise RuntimeError(f"probe child failed: {e.status}: {e.reason} {e.stderr}") from None
        except judge.LoadFailed as e:
            raise RuntimeError(f"probe child failed: {e.outcome}") from None
        finally:
            self.finish(link)
        return {"tier": self.tier, "pid": os.getpid(), "pidns": self.pidns, "landlock": self.ruleset is not None,
                "landlock_abi": landlock.abi_version(), "seccomp": self.seccomp, "uid": self.uid,
                "preload": self.preload, "child": value}


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


def _private_dir() -> str:
    """A fresh 0711 dir under the temp root (tempfile would import shutil, bz2, lzma and zlib into the worker)."""
    root = os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(root, f"tl-sandbox-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            continue
        os.chmod(path, 0o711)  # the unprivileged child must traverse into its own dir; mkdir applied the umask
        return path


def main() -> None:
    config = json.loads(sys.argv[1])
    lean = stdlib_readable_by_others()
    for name in PRELOAD_LEAN if lean else PRELOAD_FULL:
        __import__(name)
    config["preload"] = "lean" if lean else "full"
    host_in, host_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # prints from trusted test code must not corrupt the host channel
    try:
        worker = Worker(config)
        write_frame(host_out, {"op": "hello", **worker.probe()})
    except BaseException as e:
        write_frame(host_out, {"op": "hello", "error": f"{type(e).__name__}: {e}"})
        return
    gc.freeze()  # start-up objects live for good: keep them out of every later collection (and its page writes)
    reader = FrameReader()
    while True:
        msg = read_frame_blocking(host_in, reader)
        if msg is None:
            break
        try:
            reply = worker.run_job(msg)
        except Unhealthy as e:
            write_frame(host_out, {"nonce": msg.get("nonce"), "status": "sandbox_error", "failing_test": None,
                                   "stderr": "", "seconds": 0.0, "details": {"reason": str(e)}, "worker_exits": True})
            break
        write_frame(host_out, reply)
    import shutil

    shutil.rmtree(worker.base, ignore_errors=True)


if __name__ == "__main__":
    main()
