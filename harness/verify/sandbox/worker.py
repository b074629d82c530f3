"""The long-lived worker: reads jobs from the host, has the zygote fork one confined child per job, judges.

Run as `python -m harness.verify.sandbox.worker CONFIG_JSON` inside the tier's launcher (bwrap, unshare, or
nothing). It never executes candidate code itself; candidate code runs only in children of the zygote, which it
forks at start-up, before the first job: no child ever holds what a job brought (tests, reference, caches).
"""

from __future__ import annotations

import _socket
import ctypes
import functools
import gc
import json
import math
import os
import select
import signal
import sys
import time

from . import allowlist, judge, landlock, seccomp
from .confine import JOB_DIR, NPROC_WITHOUT_CGROUP, ChildLimits
from .protocol import FrameReader, read_frame_blocking, write_frame
from .zygote import Unhealthy, ZygoteLink

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
    try:
        os.listdir("/")
        fs_allowlist = False
    except OSError:
        fs_allowlist = True
    import ctypes
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    libc = ctypes.CDLL(None)
    cap_eff = "%016x" % (data[0] | data[3] << 32) if libc.capget(header, data) == 0 else "unreadable"
    try:
        os.listdir("/proc")
        proc_hidden = False
    except OSError:
        proc_hidden = True
    return {"uid": os.getuid(), "socket_blocked": sock, "root_write_blocked": write_blocked, "cap_eff": cap_eff,
            "stdlib_readable": stdlib_readable, "fs_allowlist": fs_allowlist, "proc_hidden": proc_hidden,
            "pid": os.getpid()}
'''

_PR_SET_DUMPABLE = 4
_MS_NOSUID, _MS_NODEV = 2, 4
_CAP_SYS_ADMIN = 21
_SYS_PIDFD_SEND_SIGNAL = 424
REAP_TIMEOUT_S = 10.0
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall  # resolved once, here


@functools.lru_cache(maxsize=64)  # small: every cached object is copied into each fork
def _compile_trusted(source: str, filename: str):
    # Contexts and tests repeat for every sample of a problem; code objects are immutable, so reuse is safe.
    return compile(source, filename, "exec")


class Worker:
    def __init__(self, config: dict, close_in_zygote: list[int]):
        self.uid = config.get("uid")
        self.tier = config.get("tier", "?")
        self.pidns = bool(config.get("pidns"))
        self.fresh = bool(config.get("fresh"))
        self.preload = config.get("preload", "lean")
        if self.uid is not None and os.geteuid() != 0:
            self.uid = None  # only root can drop to another uid; the host's probe reports this
        config["uid"] = self.uid
        self.jobs_root = config["jobs_root"]
        self.disk_limit = _prepare_jobs_root(self.jobs_root, config, self.uid is not None)
        ruleset = None
        if config.get("landlock") and landlock.abi_version() > 0:
            readable, listable = allowlist.readable()
            ruleset = landlock.make_ruleset([self.jobs_root], readable, listable)
            os.set_inheritable(ruleset, False)
        self.landlock = ruleset is not None
        cgroup_fd, self.oom_fd = config.get("cgroup_fd"), config.get("oom_fd")
        self.cgroup = cgroup_fd is not None
        self.seccomp = bool(config.get("seccomp")) and seccomp.supported()
        child_filter = None
        if self.seccomp:
            # On the worker itself, once: the zygote and children inherit it, which spares each child loading the
            # whole list. The worker needs none of the calls it denies (sockets, ptrace, SysV IPC, ...); each child
            # adds the short rest (namespace set-up, which the zygote and the child itself still need, and the
            # calls that make kernel objects numbered in sequence).
            seccomp.Filter(seccomp.base_names(self.fresh), base=True).install()
            child_filter = seccomp.Filter(seccomp.child_names(self.fresh, ownership=self.uid is None))
        own = [self.oom_fd] if self.oom_fd is not None else []
        self.zygote = ZygoteLink(config, ruleset, cgroup_fd, child_filter, close_in_zygote + own)
        for fd in (ruleset, cgroup_fd):  # the zygote holds them now
            if fd is not None:
                os.close(fd)
        if self.fresh:
            # Only the zygote and the children (before their candidate code) make namespaces and mounts.
            _drop_capability(_CAP_SYS_ADMIN)
            if self.seccomp:
                seccomp.Filter(seccomp.NAMESPACE_SETUP).install()
        self.oom_seen = self.oom_kills()
        # Trusted data (tests, references) arrives from now on: no process may read this one's memory.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        judge.install_alarm()

    # --- the child ---------------------------------------------------------------------------------------
    def oom_kills(self) -> int:
        """The job cgroup's OOM kills so far (read here, never in the zygote: children inherit its memory)."""
        if self.oom_fd is None:
            return 0
        for line in os.pread(self.oom_fd, 4096, 0).decode().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def spawn(self, solution: str, entry_point: str, cpu_s: int, limits: dict) -> judge.ChildLink:
        """Have the zygote fork the child that confines itself; send it the program to run."""
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        setup_sock, child_setup = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0)
        if self.fresh:
            # Messages the child sends carry its credentials: its first one gives the worker its pid.
            setup_sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_PASSCRED, 1)
        setup_w = child_setup.detach()
        child_limits = ChildLimits(memory_mb=int(limits["memory_mb"]), file_size_mb=int(limits["file_size_mb"]),
                                   cpu_s=cpu_s, nproc=32 if self.cgroup else NPROC_WITHOUT_CGROUP)
        try:
            pid = self.zygote.spawn([req_r, resp_w, out_w, setup_w], child_limits)
        finally:
            for fd in (req_r, resp_w, out_w, setup_w):
                os.close(fd)
        setup_sock.setblocking(False)
        link = judge.ChildLink(pid, req_w, resp_r, out_r, setup_sock, int(limits["output_bytes"]))
        try:
            write_frame(req_w, {"solution": solution, "entry_point": entry_point})
        except BrokenPipeError:
            pass  # the child died before reading: the load check reports how
        return link

    def finish(self, link: judge.ChildLink) -> tuple[int | None, bool]:
        """Close the pipes, kill the child and every descendant, and wait until all are gone.

        With fresh namespaces the worker does it through the child's pidfd (the job's PID namespace dies with
        its first process, and its mount namespace and tmpfs with the last); otherwise the zygote kills by uid,
        reaps as subreaper and empties the job root. Returns the child's wait status where known and whether
        the job's memory cgroup killed something."""
        for fd in (link.req_w, link.resp_r, link.out_r):
            if fd >= 0:
                os.close(fd)
        status = None
        if self.fresh:
            _kill_and_wait(link)
        else:
            link.setup.close()
            status = self.zygote.finish(link.pid)
        oom = self.oom_kills()
        killed = oom > self.oom_seen
        self.oom_seen = oom
        return status, killed

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
            status, oom = self.finish(link) if link is not None else (None, False)
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
            if outcome["status"] == "fail":
                outcome.update(status="timeout", reason="CPU time limit reached")
        if oom and outcome["status"] != "pass":
            outcome.update(status="fail", reason="memory limit exceeded (the job's memory cgroup)")
        details = base["details"]
        # Tests stop at the first failure (as evalplus does); rewards read the share passed before it.
        details["tests_total"] = len(tests)
        details["tests_passed"] = len(tests) if outcome["status"] == "pass" else \
            sum(1 for (name, _, _) in tests[: len(details["test_seconds"])] if name != failing)
        if outcome["status"] != "pass":
            details["reason"] = _clip(outcome["reason"], 1000)
            if outcome.get("failing_line"):
                details["failing_line"] = _clip(outcome["failing_line"], 500)
        return {**base, "status": outcome["status"], "failing_test": failing, "stderr": _clip(outcome["stderr"]),
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
        return {"tier": self.tier, "pid": os.getpid(), "pidns": self.pidns, "fresh_namespaces": self.fresh,
                "landlock": self.landlock,
                "landlock_abi": landlock.abi_version(), "seccomp": self.seccomp, "uid": self.uid,
                "preload": self.preload, "zygote": True, "memory_cgroup": self.cgroup, "disk_limit": self.disk_limit,
                "child": value}


def _kill_and_wait(link: judge.ChildLink) -> None:
    """SIGKILL the job's first process through its pidfd and wait until it has exited: the kernel then has killed
    and reaped every other process of its PID namespace (zap_pid_namespace runs before the exit is signalled)."""
    try:
        pidfd = link.take_pidfd(REAP_TIMEOUT_S)
    finally:
        link.setup.close()
    if pidfd is None:
        return  # the child ended (or was never made) before it sent its pidfd: it started nothing
    try:
        if _LIBC.syscall(_SYS_PIDFD_SEND_SIGNAL, pidfd, signal.SIGKILL, None, 0) != 0 and ctypes.get_errno() != 3:
            raise Unhealthy(f"pidfd_send_signal failed: errno {ctypes.get_errno()}")
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(REAP_TIMEOUT_S * 1000):
            raise Unhealthy(f"the job's processes survived SIGKILL for {REAP_TIMEOUT_S:.0f} s")
    finally:
        os.close(pidfd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def _drop_capability(cap: int) -> None:
    """Remove `cap` from this process's effective and permitted sets (the zygote, forked before, keeps it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set
    data = (ctypes.c_uint32 * 6)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    word, bit = divmod(cap, 32)
    data[3 * word] &= ~(1 << bit)  # effective
    data[3 * word + 1] &= ~(1 << bit)  # permitted
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _clip(text: str, limit: int = 2000) -> str:
    """Every string in a reply is bounded: candidate-made text must not grow a frame past the host's limit."""
    return text if len(text) <= limit else text[:limit] + "..."


def _prepare_jobs_root(path: str, config: dict, private_uid: bool) -> bool:
    """Make the directory under which each child creates its job dir; True when its size is limited.

    bwrap gives it a size-limited tmpfs already; in the unshare tier the worker, root in its own mount
    namespace, mounts one; in the seccomp tier it is a plain host directory (no size limit).
    """
    os.makedirs(path, exist_ok=True)
    limited = config["tier"] == "bwrap"
    if config.get("fresh"):
        # The mount point of every job's own tmpfs; nothing is ever written beneath it in the worker's view.
        os.makedirs(os.path.join(path, JOB_DIR), mode=0o755, exist_ok=True)
        os.chmod(path, 0o711)
        return True
    if config["tier"] == "unshare":
        libc = ctypes.CDLL(None, use_errno=True)
        opts = f"size={int(config['disk_mb'])}m,mode=0700".encode()
        if libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, opts) == 0:
            limited = True
    # Children (a private uid) may create their job dir here but not list it or remove others' entries.
    os.chmod(path, 0o1733 if private_uid else 0o700)
    return limited


def main() -> None:
    os.environ.pop("LD_BIND_NOW", None)
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
        worker = Worker(config, close_in_zygote=[host_in, host_out])
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


if __name__ == "__main__":
    main()
