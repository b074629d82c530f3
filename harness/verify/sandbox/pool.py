"""Host side: worker processes, one per slot, each fed jobs by its own thread; restarts and retries on failure."""

from __future__ import annotations

import itertools
import os
import queue
import select
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

from harness.verify.sandbox import tiers
from harness.verify.sandbox.protocol import FrameError, FrameReader, write_frame

START_TIMEOUT_S = 60.0
UID_BASE = 1_000_000_000
_instances = itertools.count()


class WorkerFailed(Exception):
    """The worker died, hung or spoke garbage: an infrastructure failure."""


def private_uid(slot: int) -> int:
    """A uid no other process on the machine uses: unique per host process and worker start (256 in rotation)."""
    return UID_BASE + (os.getpid() % 4_000_000) * 256 + next(_instances) % 256


class WorkerHandle:
    """One worker process and its pipes."""

    def __init__(self, tier: str, slot: int):
        self.tier, self.slot = tier, slot
        self.proc: subprocess.Popen | None = None
        self.hello: dict = {}
        self.log = tempfile.TemporaryFile()

    def start(self) -> dict:
        argv = tiers.worker_argv(self.tier, private_uid(self.slot))
        self.reader = FrameReader()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=tiers.worker_env(), close_fds=True)
        try:
            self.hello = self._read(START_TIMEOUT_S)
        except WorkerFailed as e:
            self.stop()
            return {"error": f"{e}; worker log: {self.log_tail()}"}
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

    def request(self, message: dict, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            hello = self.start()
            if "error" in hello:
                raise WorkerFailed(hello["error"])
        assert self.proc is not None and self.proc.stdin is not None
        try:
            write_frame(self.proc.stdin.fileno(), message)
        except OSError as e:
            self.stop()
            raise WorkerFailed(f"cannot write to worker: {e}") from None
        try:
            reply = self._read(timeout)
        except WorkerFailed:
            self.stop()
            raise
        if reply.get("nonce") != message["nonce"]:
            self.stop()
            raise WorkerFailed("worker answered out of turn")
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


class Pool:
    """`n` workers of one tier; `map` runs messages through them with retries on infrastructure failure."""

    def __init__(self, tier: str, n: int, first: WorkerHandle | None = None):
        self.tier = tier
        self.handles = [first] if first is not None else []
        self.handles += [WorkerHandle(tier, slot) for slot in range(len(self.handles), n)]

    def map(self, messages: list[dict], timeouts: list[float], retries: int,
            progress: Callable[[int], None] | None = None) -> list[dict]:
        todo: queue.Queue = queue.Queue()
        for i in range(len(messages)):
            todo.put(i)
        results: list[dict | None] = [None] * len(messages)
        lock = threading.Lock()

        def run(handle: WorkerHandle) -> None:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                errors = []
                for attempt in range(retries + 1):
                    try:
                        reply = handle.request(messages[i], timeouts[i])
                    except WorkerFailed as e:
                        errors.append(str(e))
                        continue
                    if reply.get("status") != "sandbox_error":
                        break
                    errors.append(reply.get("details", {}).get("reason", "sandbox_error"))
                else:
                    reply = {"status": "sandbox_error", "failing_test": None, "stderr": "", "seconds": 0.0,
                             "details": {"reason": "; ".join(errors)[-2000:]}}
                reply.setdefault("details", {})["attempts"] = len(errors) + (reply["status"] != "sandbox_error")
                with lock:
                    results[i] = reply
                if progress is not None:
                    progress(1)

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
