"""Host side: worker processes, one per slot, each fed jobs by its own thread; restarts and retries on failure."""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import os
import queue
import select
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

from . import cgroups, cleanup, tiers
from .protocol import FrameError, FrameReader, pack, write_all

START_TIMEOUT_S = 60.0
PIPELINE_DEPTH = 2  # jobs queued on a worker at once
EAGER_FRAME_BYTES = 32 * 1024  # well under a pipe's 64 KiB buffer
UID_BASE = 1_000_000_000
_instances = itertools.count()


class WorkerFailed(Exception):
    """The worker died, hung or spoke garbage. `during_job`: it had started and taken a job, so the job may be the
    cause; a job that does this to every fresh worker it gets is judged the candidate's failure."""

    def __init__(self, message: str, during_job: bool = True):
        super().__init__(message)
        self.during_job = during_job


HOST_DIR_PREFIX = "tl-sandbox-"


def jobs_parent() -> str:
    """Where the host makes workers' job directories: the temp dir, if the children's uid can traverse to it."""
    for root in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path, ok = os.path.realpath(root), True
        while ok and path != "/":
            ok = os.path.isdir(path) and bool(os.stat(path).st_mode & 0o001)
            path = os.path.dirname(path)
        if ok:
            return root
    return tempfile.gettempdir()


def remove_stale() -> None:
    """Remove the job directories and cgroups of tl-eval processes that no longer exist (e.g. after kill -9)."""
    root = jobs_parent()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if name.startswith(HOST_DIR_PREFIX) and len(parts) >= 4 and parts[2].isdigit() \
                and not os.path.exists(f"/proc/{parts[2]}"):
            cleanup.rmtree(os.path.join(root, name))
    cgroups.remove_stale()


_launcher: concurrent.futures.ThreadPoolExecutor | None = None
_launcher_lock = threading.Lock()


def _popen(*args, **kwargs) -> subprocess.Popen:
    """Popen from one long-lived thread: bwrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that
    started it exits, so a worker started from a short-lived feeding thread would die when that thread returns."""
    global _launcher
    with _launcher_lock:
        if _launcher is None:
            _launcher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tl-sandbox-launcher")
    return _launcher.submit(subprocess.Popen, *args, **kwargs).result()


def private_uid(slot: int) -> int:
    """A uid no other process on the machine uses: unique per host process and worker start (256 in rotation)."""
    return UID_BASE + (os.getpid() % 4_000_000) * 256 + next(_instances) % 256


class WorkerHandle:
    """One worker process, its pipes, and what the host made for it (job directory, memory cgroup)."""

    def __init__(self, tier: str, slot: int, memory_mb: int = 1024, disk_mb: int = 64):
        self.tier, self.slot = tier, slot
        self.memory_mb, self.disk_mb = memory_mb, disk_mb
        self.proc: subprocess.Popen | None = None
        self.hello: dict = {}
        self.log = tempfile.TemporaryFile()
        self.uid: int | None = None
        self.jobs_dir: str | None = None
        self.cgroup: cgroups.MemoryCgroup | None = None
        self.cgroup_note = ""

    def start(self) -> dict:
        self.uid = private_uid(self.slot)
        if self.tier != "bwrap":
            # Made and removed by the host, so a worker killed before it cleans up leaves nothing behind.
            self.jobs_dir = tempfile.mkdtemp(prefix=f"{HOST_DIR_PREFIX}{os.getpid()}-", dir=jobs_parent())
        fds: list[int] = []
        argv_prefix: list[str] = []
        if self.tier != "none":
            self.cgroup, self.cgroup_note = cgroups.create(f"{self.slot}-{os.urandom(3).hex()}", self.memory_mb)
        if self.cgroup is not None:
            fds = [os.open(self.cgroup.job / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC),
                   os.open(self.cgroup.oom_kills(), os.O_RDONLY | os.O_CLOEXEC)]
            # The shell moves itself into the worker's cgroup before it becomes bwrap/unshare/the worker.
            argv_prefix = ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(self.cgroup.worker / "cgroup.procs")]
        try:
            argv = argv_prefix + tiers.worker_argv(self.tier, self.uid, self.jobs_dir or tiers.BWRAP_JOBS,
                                                   self.disk_mb, tuple(fds) if fds else None)
            self.reader = FrameReader()
            self.proc = _popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                               env=tiers.worker_env(self.tier), close_fds=True, pass_fds=fds)
        except BaseException:
            self._release()
            raise
        finally:
            for fd in fds:
                os.close(fd)
        try:
            self.hello = self._read(START_TIMEOUT_S)
        except WorkerFailed as e:
            self.stop()
            return {"error": f"{e}; worker log: {self.log_tail()}"}
        if self.cgroup_note:
            self.hello["memory_cgroup_note"] = self.cgroup_note
        return self.hello

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read()[-1500:].decode("utf-8", "replace").strip()

    def _read(self, timeout: float) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.reader.next_frame()
            except FrameError as e:
                raise WorkerFailed(str(e)) from None
            if frame is not None:
                return frame
            if self.reader.eof:
                raise WorkerFailed(f"worker exited (code {self.proc.poll()})")
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise WorkerFailed(f"worker did not answer within {timeout:.0f} s")
            self.reader.feed(fd)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, frame: bytes) -> None:
        """Queue one packed job on the worker (starting it if needed); the worker runs its jobs in order."""
        if not self.alive():
            hello = self.start()
            if "error" in hello:
                raise WorkerFailed(hello["error"], during_job=False)
        assert self.proc is not None and self.proc.stdin is not None
        try:
            write_all(self.proc.stdin.fileno(), frame)
        except OSError as e:
            self.stop()
            raise WorkerFailed(f"cannot write to worker: {e}") from None

    def receive(self, nonce: str, timeout: float) -> dict:
        """The reply to the oldest job sent and not yet answered."""
        try:
            reply = self._read(timeout)
        except WorkerFailed:
            self.stop()
            raise
        if reply.get("nonce") != nonce:
            self.stop()
            raise WorkerFailed("worker answered out of turn")
        if reply.pop("worker_exits", False):
            self.stop()
        return reply

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # bwrap --die-with-parent / unshare --kill-child take the worker's tree with it
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for f in (self.proc.stdin, self.proc.stdout):
                if f is not None:
                    f.close()
            self.proc = None
        self._release()

    def _release(self) -> None:
        """Kill what may outlive the worker (no PID namespace in the seccomp tier) and remove its host state."""
        if self.tier == "seccomp" and self.uid is not None and os.geteuid() == 0:
            _kill_uid(self.uid)
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.jobs_dir is not None:
            cleanup.rmtree(self.jobs_dir)
            self.jobs_dir = None


class Pool:
    """`n` workers of one tier; `map` runs messages through them with retries on infrastructure failure."""

    def __init__(self, tier: str, n: int, first: WorkerHandle | None = None, memory_mb: int = 1024,
                 disk_mb: int = 64):
        self.tier = tier
        self.handles = [first] if first is not None else []
        self.handles += [WorkerHandle(tier, slot, memory_mb, disk_mb) for slot in range(len(self.handles), n)]

    def map(self, messages: list[dict], timeouts: list[float], retries: int,
            progress: Callable[[int], None] | None = None) -> list[dict]:
        todo: queue.Queue = queue.Queue()
        for i in range(len(messages)):
            todo.put(i)
        results: list[dict | None] = [None] * len(messages)
        frames = [pack(m) for m in messages]
        errors: list[list[str]] = [[] for _ in messages]
        crashes = [0] * len(messages)

        def finish(i: int, reply: dict, from_worker: bool = True) -> None:
            reply.setdefault("details", {})["attempts"] = len(errors[i]) + from_worker
            results[i] = reply
            if progress is not None:
                progress(1)

        def run(handle: WorkerHandle) -> None:
            retry: collections.deque[int] = collections.deque()  # failed attempts go again on this thread
            inflight: collections.deque[int] = collections.deque()

            def failed(i: int, error: str, during_job: bool = False) -> None:
                errors[i].append(error)
                crashes[i] += during_job
                if len(errors[i]) > retries:
                    # A job that broke every fresh worker it was given is the program's doing, not the
                    # infrastructure's: a failure, never an exclusion the candidate could choose.
                    caused = crashes[i] == len(errors[i])
                    finish(i, {"status": "fail" if caused else "sandbox_error", "failing_test": None, "stderr": "",
                               "seconds": 0.0,
                               "details": {"reason": ("the program broke the sandbox worker on every attempt: "
                                                      if caused else "") + "; ".join(errors[i])[-2000:]}},
                           from_worker=False)
                else:
                    retry.append(i)

            def requeue_inflight() -> None:
                # The worker is gone; jobs queued behind the one that failed never ran: send them again, uncharged.
                retry.extendleft(reversed(inflight))
                inflight.clear()

            while True:
                # Keep the next job queued on the worker, so it never waits for this thread between jobs. Only
                # small frames go ahead of time: a big one could block this thread while the worker's reply waits.
                while len(inflight) < PIPELINE_DEPTH:
                    i = _next(retry, todo)
                    if i is None:
                        break
                    if inflight and (len(frames[i]) > EAGER_FRAME_BYTES or not handle.alive()):
                        retry.appendleft(i)  # (a dead worker: its queued jobs are requeued when its reply fails)
                        break
                    try:
                        handle.send(frames[i])
                    except WorkerFailed as e:
                        requeue_inflight()
                        failed(i, str(e), e.during_job)
                        continue
                    inflight.append(i)
                if not inflight:
                    return
                i = inflight.popleft()
                try:
                    reply = handle.receive(messages[i]["nonce"], timeouts[i])
                except WorkerFailed as e:
                    requeue_inflight()
                    failed(i, str(e), e.during_job)
                    continue
                exits = handle.proc is None  # the worker said it exits after this reply (it could not clean up)
                if exits:
                    requeue_inflight()
                if reply.get("status") == "sandbox_error":
                    failed(i, reply.get("details", {}).get("reason", "sandbox_error"), exits)
                else:
                    finish(i, reply)

        threads = [threading.Thread(target=run, args=(h,), daemon=True) for h in self.handles[:max(1, len(messages))]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for h in self.handles:
            h.stop()
            h.log.close()


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (the worker's private one): a helper takes the uid and kills all it may.
    A bare fork (no exec): the helper makes two system calls, and an interpreter could not even be exec'd as
    that uid when Python lives under a mode-700 home."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, 9)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _next(retry: collections.deque, todo: queue.Queue) -> int | None:
    if retry:
        return retry.popleft()
    try:
        return todo.get_nowait()
    except queue.Empty:
        return None
