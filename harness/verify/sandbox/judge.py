"""The trusted side of one test: runs context + test code in the worker, forwarding entry-point calls to the child.

Only this module decides that a test passed, and only after the test code returned normally; that decision is
the pass marker. The child can end a test early (exit, crash, hang) but every such ending is a non-pass.
"""

from __future__ import annotations

import _socket
import builtins
import ctypes
import os
import select
import struct
import signal
import time
import traceback

from . import codec
from .protocol import REPLY_CONTAINERS, REPLY_MAX, FrameError, FrameReader, FrameTooLarge, write_frame

EXCERPT = 2000
_FD_SIZE = struct.calcsize("i")
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_SCM_CREDENTIALS = 2
_SETUP_ANC = _socket.CMSG_SPACE(4 * _FD_SIZE) + _socket.CMSG_SPACE(_UCRED.size)
_SYS_PIDFD_OPEN = 434  # the same number on every architecture
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall  # resolved once, here


class Stop(BaseException):
    """Ends a test from inside the trusted test code; a BaseException so that `except Exception` can't eat it."""

    def __init__(self, status: str, reason: str, stderr: str = ""):
        super().__init__(reason)
        self.status, self.reason, self.stderr = status, reason, stderr


class LoadFailed(BaseException):
    """The program never became ready (compile error, exception at import, no entry point): the test's outcome."""

    def __init__(self, outcome: dict):
        super().__init__(outcome["reason"])
        self.outcome = outcome


class CandidateError(Exception):
    """Stands in for an exception of a non-builtin class raised by the candidate."""


class ChildLink:
    """The worker's end of the pipes to one child (which serves every test of one job), with the current test's
    wall deadline and output cap.

    `setup` is a socket on which the child reports, before any candidate code runs, its pid (fresh-namespace
    tiers: the kernel's credentials on a message, of which the worker opens a pidfd) and then that its
    confinement is complete. Replies are bounded (`protocol.REPLY_MAX` bytes and
    `REPLY_CONTAINERS` containers) so that what the worker decodes, not the child, sets the worker's memory."""

    def __init__(self, pid: int | None, req_w: int, resp_r: int, out_r: int, setup: _socket.socket,
                 output_bytes: int):
        self.pid, self.req_w, self.resp_r, self.out_r, self.setup = pid, req_w, resp_r, out_r, setup
        self.output_bytes = output_bytes
        self.deadline = 0.0
        self.reader = FrameReader(REPLY_MAX, REPLY_CONTAINERS)
        self.pidfd: int | None = None
        self._pidfd_error = 0
        self._setup_eof = False
        self.output = bytearray()
        self.output_total = 0
        self.calls = 0
        self.loaded = False
        self._load_ending: BaseException | None = None
        self._confined = False
        self.poller = select.poll()
        self.poller.register(resp_r, select.POLLIN)
        self.poller.register(out_r, select.POLLIN)

    def begin_test(self, deadline: float) -> None:
        """Start a test: its own deadline, output cap and output excerpt."""
        self.deadline = deadline
        self.output = bytearray()
        self.output_total = 0

    def _read_setup(self, timeout: float | None = None) -> bool:
        """Take one report from the setup socket; False when none is there (within `timeout`) or it has closed."""
        if self._setup_eof:
            return False
        if timeout is not None and not select.select([self.setup], [], [], timeout)[0]:
            return False
        try:
            data, anc, _, _ = self.setup.recvmsg(16, _SETUP_ANC)
        except (BlockingIOError, InterruptedError):
            return False
        fds, pid = [], None
        for level, kind, blob in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(blob) // _FD_SIZE}i", blob[: len(blob) - len(blob) % _FD_SIZE])
            elif level == _socket.SOL_SOCKET and kind == _SCM_CREDENTIALS and len(blob) >= _UCRED.size:
                pid = _UCRED.unpack_from(blob)[0]  # set by the kernel: the sender's pid in this namespace
        if data == b"p" and pid and pid > 0 and self.pidfd is None:
            # The child (pid 1 of the job's namespace) cannot have been reaped yet: the zygote reaps it only
            # before the next spawn, after the worker has waited on this pidfd; so the pid is still the child's.
            pidfd = _LIBC.syscall(_SYS_PIDFD_OPEN, pid, 0)
            if pidfd < 0:
                self._pidfd_error = ctypes.get_errno()  # raised by take_pidfd: the job's end cannot be awaited
            else:
                self.pidfd = pidfd
        elif data == b"1":
            self._confined = True
        elif not data:
            self._setup_eof = True
        for fd in fds:
            os.close(fd)
        return bool(data)

    def confined(self) -> bool:
        """Whether the child reported its confinement complete (it does so before any candidate code runs)."""
        while not self._confined and self._read_setup():
            pass
        return self._confined

    def take_pidfd(self, timeout: float) -> int | None:
        """The child's pidfd, waiting for it if the child has not sent it yet; None if it never will."""
        while self.pidfd is None and not self._pidfd_error and self._read_setup(timeout):
            pass
        if self._pidfd_error:
            raise OSError(self._pidfd_error, "pidfd_open of the child failed")
        if self.pidfd is None and not self._setup_eof:
            raise TimeoutError("the child sent no pidfd")
        pidfd, self.pidfd = self.pidfd, None
        return pidfd

    def ensure_loaded(self) -> None:
        """Return once the child reports the program ready; else raise LoadFailed or Stop (again on every call).

        The worker does not wait for this before running the test: the first call's arguments queue in the pipe
        while the child starts, which saves a round trip; the child's first frame is still read before any reply.
        """
        if self.loaded:
            return
        if self._load_ending is not None:
            raise self._load_ending
        try:
            first = self.wait_frame()
            if not self.confined():
                # Nothing may precede the confinement report; a frame without it means the child's setup went wrong.
                raise Stop("sandbox_error", "the child could not confine itself")
        except Stop as s:
            if not self.confined():
                s = Stop("sandbox_error", "the child could not confine itself", s.stderr)
            self._load_ending = s
            raise s from None
        kind = first.get("kind") if isinstance(first, dict) else None
        if kind != "ready":
            self._load_ending = LoadFailed(_load_failure(kind, first, self))
            raise self._load_ending
        self.loaded = True

    def _drain_output(self) -> None:
        chunk = os.read(self.out_r, 1 << 16)
        if not chunk:
            self.poller.unregister(self.out_r)
            os.close(self.out_r)
            self.out_r = -1
            return
        self.output_total += len(chunk)
        if len(self.output) < 2 * EXCERPT:
            self.output += chunk[: 2 * EXCERPT - len(self.output)]
        if self.output_total > self.output_bytes:
            raise Stop("fail", f"output limit exceeded ({self.output_bytes} bytes)", self.stderr_excerpt())

    def stderr_excerpt(self) -> str:
        return self.output[:EXCERPT].decode("utf-8", "replace")

    def wait_frame(self) -> dict:
        """The child's next frame; raises Stop on deadline, exit, output flood or garbage."""
        while True:
            try:
                frame = self.reader.next_frame()
            except FrameTooLarge as e:
                raise Stop("fail", f"the return value is too large to judge: {e}", self.stderr_excerpt())
            except FrameError as e:
                raise Stop("fail", f"the program corrupted its reply channel: {e}", self.stderr_excerpt())
            if frame is not None:
                # The child flushes its output before it replies, but a poll can report the reply first: take
                # what is already in the output pipe now, or a failing test's stderr may be missing.
                while self.out_r >= 0 and select.select([self.out_r], [], [], 0)[0]:
                    self._drain_output()
                return frame
            if self.reader.eof:
                raise Stop("fail", "the program exited before the tests finished", self.stderr_excerpt())
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise Stop("timeout", "wall-clock limit reached", self.stderr_excerpt())
            for fd, _ in self.poller.poll(remaining * 1000):
                if fd == self.resp_r:
                    self.reader.feed(fd)
                elif fd == self.out_r:
                    self._drain_output()

    def call(self, args: tuple, kwargs: dict):
        try:
            request = {"args": codec.encode(list(args)), "kwargs": codec.encode(dict(kwargs))}
        except codec.NotPlainData as e:
            raise Stop("sandbox_error", f"a test passes a non-plain argument to the entry point: {e}")
        self.calls += 1
        try:
            write_frame(self.req_w, request)
        except BrokenPipeError:
            self.ensure_loaded()
            raise Stop("fail", "the program exited before the tests finished", self.stderr_excerpt()) from None
        self.ensure_loaded()
        return _reply_value(self.wait_frame(), self.stderr_excerpt)


def _reply_value(frame: dict, stderr):
    kind = frame.get("kind") if isinstance(frame, dict) else None
    if kind == "ok":
        try:
            return codec.decode(frame["value"])
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise Stop("fail", f"undecodable return value: {e}", stderr()) from None
    if kind == "not_plain":
        raise Stop("fail", f"returned a value that is not plain data: {frame.get('message', '')}", stderr())
    if kind == "raise":
        raise _rebuild_exception(frame)
    if kind == "abort":
        raise Stop("fail", f"the program raised {frame.get('type')} inside a call", str(frame.get("traceback", "")))
    raise Stop("fail", f"unexpected reply {str(kind)[:40]!r} from the program", stderr())


def _rebuild_exception(frame: dict) -> BaseException:
    """A builtin exception of the same class, so tests that expect e.g. ValueError still see one."""
    name, message = str(frame.get("type")), str(frame.get("message", ""))
    cls = getattr(builtins, name, None) if frame.get("builtin") else None
    exc: BaseException | None = None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls(message)
        except Exception:
            exc = None
    if exc is None:
        exc = CandidateError(f"{name}: {message}")
    exc._tl_candidate = {"type": name, "traceback": str(frame.get("traceback", ""))[-EXCERPT:]}  # type: ignore[attr-defined]
    return exc


class _Proxy:
    """What the test code sees under the entry point's name."""

    def __init__(self, link: ChildLink):
        self._link = link

    def __call__(self, *args, **kwargs):
        return self._link.call(args, kwargs)


def _failing_line(exc: BaseException, test_code: str) -> str | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<test>":
            line = lineno
    lines = test_code.splitlines()
    return lines[line - 1].strip()[:500] if line and 0 < line <= len(lines) else None


def _alarm(signum, frame):
    raise Stop("timeout", "wall-clock limit reached")


def install_alarm() -> None:
    """Route SIGALRM to the test deadline; the worker calls this once (run_test only arms the timer)."""
    signal.signal(signal.SIGALRM, _alarm)


def run_test(link: ChildLink, context_code, test_code, test_source: str, entry_point: str, load: bool) -> dict:
    """Outcome of one test: {status, reason, stderr, failing_line}; status "pass" only if the test code returned.

    `load`: first test of the job; however the test ends, the program's loading is checked and a load failure
    (compile error, exception at import, no entry point) decides the outcome, as if checked before the test.
    """
    out = {"status": "pass", "reason": "", "stderr": "", "failing_line": None}
    try:
        signal.setitimer(signal.ITIMER_REAL, max(link.deadline - time.monotonic(), 0.001))
        try:
            ending = None
            try:
                ns = {"__name__": "__tltest__", "__builtins__": builtins}
                try:
                    exec(context_code, ns)
                except Exception as e:  # trusted task code failed: the infrastructure's fault, not the model's
                    raise Stop("sandbox_error",
                               f"the task's context raised {type(e).__name__}: {str(e)[:300]}") from None
                ns[entry_point] = _Proxy(link)
                exec(test_code, ns)
            except BaseException as e:  # noqa: BLE001 - judged below, after the load check
                ending = e
            if load:
                link.ensure_loaded()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if ending is not None:
            raise ending
    except LoadFailed as f:
        out.update(f.outcome)
    except Stop as s:
        out.update(status=s.status, reason=s.reason, stderr=s.stderr)
    except BaseException as e:  # noqa: BLE001 - every other ending of the test code is a verdict, not a crash
        cand = getattr(e, "_tl_candidate", None)
        out["failing_line"] = _failing_line(e, test_source)
        if cand is not None:
            memory = cand["type"] == "MemoryError"
            out.update(status="fail" if memory else "runtime_error",
                       reason="memory limit exceeded" if memory else f"the program raised {cand['type']}",
                       stderr=cand["traceback"])
        elif isinstance(e, AssertionError):
            out.update(status="fail", reason="assertion failed", stderr=link.stderr_excerpt())
        else:
            out.update(status="fail", reason=f"the test raised {type(e).__name__}: {str(e)[:300]}",
                       stderr=link.stderr_excerpt())
    if out["status"] != "pass" and not out["stderr"]:
        out["stderr"] = link.stderr_excerpt()
    return out


def _load_failure(kind, frame: dict, link: ChildLink) -> dict:
    tb = str(frame.get("traceback", ""))[-EXCERPT:] if isinstance(frame, dict) else ""
    if kind == "compile_error":
        return {"status": "compile_error", "reason": f"{frame.get('type')} while compiling", "stderr": tb}
    if kind == "missing":
        return {"status": "runtime_error", "reason": str(frame.get("message")), "stderr": link.stderr_excerpt()}
    if kind == "raise":
        memory = frame.get("type") == "MemoryError"
        return {"status": "fail" if memory else "runtime_error",
                "reason": "memory limit exceeded" if memory else f"the program raised {frame.get('type')} on load",
                "stderr": tb}
    if kind == "abort":
        return {"status": "fail", "reason": f"the program raised {frame.get('type')} before the tests ran", "stderr": tb}
    return {"status": "fail", "reason": f"unexpected message {str(kind)[:40]!r} from the program",
            "stderr": link.stderr_excerpt()}
