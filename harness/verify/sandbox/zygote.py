"""The zygote: forked from the worker before the worker receives any job; it forks, kills and reaps the children.

A child forked from the worker would inherit everything the worker held: the job's tests and reference program,
the compiled-code cache of earlier problems, earlier candidates' programs. Children forked from the zygote inherit
only the worker's start-up state. The zygote receives nothing of a job but its limits and the child's pipe fds
(over a Unix socket, SCM_RIGHTS); the worker sends the program to the child itself, on the child's request pipe.

Where the tier gives each job fresh namespaces (bwrap, unshare), the zygote also learns nothing *from* a job, so
that a child cannot read in the memory it inherits what earlier children did: each child is born as pid 1 of a
new PID namespace (its descendants die with it), and the zygote forks and reaps it through ctypes without ever
holding its pid (which counts every process earlier jobs made) or its wait status as a Python object. The child's first setup message carries its pid (kernel credentials), of which the worker
opens a pidfd; the worker kills and waits through it, and reads the job cgroup's OOM counter itself.
"""

from __future__ import annotations

import _socket
import ctypes
import gc
import json
import os
import signal
import struct
import sys
import time
import traceback

from . import cleanup, landlock
from .child import serve
from .confine import JOB_DIR, ChildLimits, confine, mount_job_dir

_MSG_BYTES = 1 << 16
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
_FD_SIZE = struct.calcsize("i")
_CLONE_NEWPID = 0x20000000
_LIBC = ctypes.CDLL(None, use_errno=True)
# fork() through ctypes with no return type: the parent never holds the child's pid as an int. PyDLL keeps the GIL
# across the call, and the PyOS_* hooks do what os.fork() does around it.
_FORK = ctypes.PyDLL(None).fork
_FORK.restype, _FORK.argtypes = None, []
_PY = ctypes.pythonapi
_WAITPID = _LIBC.waitpid
_WAITPID.restype = None


class Unhealthy(Exception):
    """The sandbox cannot guarantee a clean slate for the next job; the worker exits and the host starts another."""


# A request from the worker is one fixed-size record: the operation, then the child's limits (spawn) or its pid
# (finish, legacy tiers). Unpacking it builds a handful of ints, where JSON built dicts and lists in the zygote on
# every job (each object it touches after a fork is a page copied).
_REQUEST = struct.Struct("=B5q")
OP_SPAWN, OP_FINISH = 1, 2
_FDS_SPACE = _socket.CMSG_SPACE(8 * _FD_SIZE)


def send(sock, obj, fds: list[int] = ()) -> None:
    """A reply from the zygote (legacy tiers only): JSON."""
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    sock.sendmsg([json.dumps(obj).encode()], anc)


def _fds_of(anc) -> list[int]:
    fds: list[int] = []
    for level, kind, blob in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(blob) // _FD_SIZE}i", blob[: len(blob) - len(blob) % _FD_SIZE])
    return fds


def recv(sock) -> tuple[dict | None, list[int]]:
    data, anc, _, _ = sock.recvmsg(_MSG_BYTES, _FDS_SPACE)
    return (json.loads(data) if data else None), _fds_of(anc)


def send_request(sock, op: int, values, fds: list[int] = ()) -> None:
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    sock.sendmsg([_REQUEST.pack(op, *values)], anc)


def recv_request(sock) -> tuple[int, tuple, list[int]]:
    """(operation, values, fds); operation 0 at end of stream."""
    data, anc, _, _ = sock.recvmsg(_REQUEST.size, _FDS_SPACE)
    fds = _fds_of(anc) if anc else []
    if len(data) != _REQUEST.size:
        for fd in fds:
            os.close(fd)
        return 0, (), []
    op, *values = _REQUEST.unpack(data)
    return op, values, fds


class Zygote:
    """Runs in the zygote process: `spawn` and `finish` requests from the worker, one job at a time."""

    def __init__(self, sock, config: dict, ruleset: int | None, cgroup_fd: int | None, child_filter):
        self.sock = sock
        self.uid = config.get("uid")
        self.jobs_root = config["jobs_root"]
        self.fresh = bool(config.get("fresh"))
        self.disk_mb = int(config.get("disk_mb", 64))
        self.ruleset, self.cgroup_fd = ruleset, cgroup_fd
        self.child_filter = child_filter
        self.own_pidns: int | None = None
        self.tmpfs_mounted = False
        self.job_dir = os.path.join(self.jobs_root, JOB_DIR)
        # Open once and inherited by every child (its stdin), rather than opened by each child.
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        # With Landlock's signal scoping a child cannot signal the zygote, so the zygote may briefly take the
        # children's uid to kill them all at once; otherwise a helper process does it (one fork more per job).
        self.kill_as_uid = self.uid is not None and landlock.abi_version() >= 6 and config.get("landlock")

    def serve_forever(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker gone: so is the zygote
        if self.fresh:
            # A job's orphans stay in its PID namespace and die with its first process, which spawn_fresh reaps.
            self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        else:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a job come back here, to be killed
        if self.cgroup_fd is not None:
            # The zygote joins the job's memory cgroup once, so every child is born in it: moving each child
            # instead costs an RCU grace period per job (~10 ms of latency measured with cgroup v1).
            os.write(self.cgroup_fd, b"0")
            os.close(self.cgroup_fd)
            self.cgroup_fd = None
            # Inherited by every child: the cgroup's OOM killer takes the job's largest process, never the zygote
            # (as small as a process gets) unless nothing else is left.
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("1000")
        # Every child's TMPDIR is its job directory: set once here and inherited, rather than set by each child.
        os.environ["TMPDIR"] = self.job_dir
        gc.freeze()  # what the zygote holds lives for good: no collection touches (and copies) it in a child
        child = None
        try:
            while True:
                op, values, fds = recv_request(self.sock)
                if op == 0:
                    return
                if op == OP_SPAWN and self.fresh:
                    self.spawn_fresh(fds, ChildLimits(*values))  # no reply: nothing of the child comes back
                elif op == OP_SPAWN:
                    child = self.spawn(fds, ChildLimits(*values))
                    send(self.sock, {"pid": child})
                elif op == OP_FINISH:
                    try:
                        status = self.kill_all(values[0])
                        cleanup.empty_dir(self.jobs_root)
                    except (Unhealthy, OSError) as e:
                        send(self.sock, {"error": f"{type(e).__name__}: {e}"[:500]})
                        return
                    child = None
                    send(self.sock, {"status": status})
        finally:
            if child is not None:
                try:
                    self.kill_all(child)
                except BaseException:
                    pass

    # --- the child ---------------------------------------------------------------------------------------
    def spawn(self, fds: list[int], limits: ChildLimits) -> int:
        sys_flush()
        pid = os.fork()
        if pid == 0:
            self._child(fds, limits)
        for fd in fds:
            os.close(fd)
        return pid

    def spawn_fresh(self, fds: list[int], limits: ChildLimits) -> None:
        """Fork the child as pid 1 of a new PID namespace, then point the zygote's next fork back at its own."""
        sys_flush()
        # The last job's child: dead (the worker waited for its pidfd), a zombie until now. Reaped through ctypes
        # with no return value and no status, so neither its pid nor how it ended becomes an object here; reaping
        # (rather than ignoring SIGCHLD) keeps its CPU time in the zygote's accounting of children.
        _WAITPID(-1, None, os.WNOHANG)
        try:
            mount_job_dir(self.job_dir, self.uid, self.disk_mb, self.tmpfs_mounted)
        except OSError as e:
            raise Unhealthy(str(e)) from None
        self.tmpfs_mounted = True
        if _LIBC.unshare(_CLONE_NEWPID) != 0:
            raise Unhealthy(f"unshare(CLONE_NEWPID) failed: errno {ctypes.get_errno()}")
        _PY.PyOS_BeforeFork()
        _FORK()
        if os.getpid() == 1:  # only the new namespace's first process has pid 1; the zygote never does
            _PY.PyOS_AfterFork_Child()
            self._child(fds, limits)
        _PY.PyOS_AfterFork_Parent()
        if _LIBC.setns(self.own_pidns, _CLONE_NEWPID) != 0:
            raise Unhealthy(f"setns(CLONE_NEWPID) failed: errno {ctypes.get_errno()}")
        for fd in fds:
            os.close(fd)

    def _child(self, fds: list[int], limits: ChildLimits) -> None:
        code = 70
        try:
            gc.freeze()  # the inherited heap is never collected here: no copy-on-write faults from gc scans
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            # The zygote's descriptors are all below 200: the kept ones are parked above, everything else closed.
            keep = list(fds) + [self.devnull] + ([self.ruleset] if self.ruleset is not None else [])
            for i, fd in enumerate(keep):
                os.dup2(fd, 200 + i)  # dup2 clears close-on-exec on the copy
            os.closerange(0, 200)
            os.closerange(200 + len(keep), 65536)
            os.dup2(204, 0)
            os.dup2(202, 1)
            os.dup2(202, 2)
            for i in range(4):
                os.dup2(200 + i, 3 + i)
            ruleset = 205 if self.ruleset is not None else None
            if self.fresh:
                # The first report, before anything can fail: the worker's end of the setup socket passes
                # credentials, so this message carries the child's pid (in the worker's namespace, not as an
                # object here), of which the worker opens a pidfd; the zygote does not reap it before the next
                # spawn, which comes after the worker has waited for the job's end.
                os.write(6, b"p")
            confine(self.jobs_root, self.uid, limits, ruleset, self.child_filter, self.fresh, self.job_dir)
            os.closerange(200, 200 + len(keep))
            os.write(6, b"1")
            os.close(6)  # closed before any candidate code runs: the candidate cannot fake confinement
            serve(3, 4)
            code = 0
        except BaseException:
            _write_traceback()
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
            # As subreaper the zygote inherits every orphan, so "no children left" means every descendant is gone.
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
        if self.kill_as_uid:
            # kill(-1) reaches exactly the processes whose real or saved uid is the children's (a setsid()
            # grandchild has left the process group, not the uid, which is theirs alone). The saved uid stays 0,
            # so the zygote takes its own ids back right after.
            os.setresuid(self.uid, self.uid, 0)
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.setresuid(0, 0, 0)
        elif self.uid is not None:
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


def _write_traceback() -> None:
    """The current exception to stderr (the worker's log), best effort: a forked process must reach _exit."""
    try:
        os.write(2, traceback.format_exc().encode()[-2000:])
    except BaseException:
        pass


def sys_flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def _children_of(ppid: int) -> list[int]:
    """Live children, read from /proc: the fallback when no private uid is available."""
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


class ZygoteLink:
    """The worker's end: start the zygote (before any job), then spawn and finish children through it."""

    def __init__(self, config: dict, ruleset: int | None, cgroup_fd: int | None, child_filter,
                 close_in_zygote: list[int]):
        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0)
        sys_flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                mine.close()
                for fd in close_in_zygote:
                    os.close(fd)
                Zygote(theirs, config, ruleset, cgroup_fd, child_filter).serve_forever()
            except BaseException:
                code = 70
                _write_traceback()
            finally:
                os._exit(code)
        theirs.close()
        self.sock, self.pid = mine, pid
        self.fresh = bool(config.get("fresh"))

    def _ask(self, op: int, values, fds: list[int] = ()) -> dict:
        try:
            send_request(self.sock, op, values, fds)
            reply, extra = recv(self.sock)
        except OSError as e:
            raise Unhealthy(f"the zygote is gone: {e}") from None
        for fd in extra:
            os.close(fd)
        if reply is None:
            raise Unhealthy("the zygote exited")
        if "error" in reply:
            raise Unhealthy(reply["error"])
        return reply

    def spawn(self, fds: list[int], limits: ChildLimits) -> int | None:
        """The child's pid, or None with fresh namespaces (the child then sends its pidfd on its setup socket)."""
        if not self.fresh:
            return self._ask(OP_SPAWN, limits, fds)["pid"]
        try:
            send_request(self.sock, OP_SPAWN, limits, fds)
        except OSError as e:
            raise Unhealthy(f"the zygote is gone: {e}") from None
        return None

    def finish(self, pid: int) -> int | None:
        """Legacy tiers: the zygote kills and reaps the job; the child's wait status."""
        return self._ask(OP_FINISH, (pid, 0, 0, 0, 0))["status"]
