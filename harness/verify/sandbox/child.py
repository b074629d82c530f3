"""The untrusted side: runs the candidate program, then answers calls to its entry point with plain data.

The child never sees the tests, the expected values or the reference program: it is forked from the zygote,
which never received a job, and the worker sends it only the program and the arguments of each call. Whatever
the child writes is a claim about return values, never a verdict.
"""

from __future__ import annotations

import builtins
import sys
import traceback

from . import codec
from .protocol import FrameReader, read_frame_blocking, write_frame

EXCERPT = 2000
NAME_CHARS = 200  # type names and messages are the candidate's text: bounded before they are encoded


def _excerpt(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # the sandbox's frames say nothing
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:  # a rigged __str__ must not take the child's reporting down with it
        text = type(exc).__name__
    return text[-EXCERPT:]


def _exception_frame(exc: BaseException) -> dict:
    t = type(exc)
    try:
        message = str(exc)[:500]
    except BaseException:
        message = ""
    return {"kind": "raise" if isinstance(exc, Exception) else "abort", "type": str(t.__name__)[:NAME_CHARS],
            "builtin": getattr(builtins, t.__name__, None) is t, "message": message, "traceback": _excerpt(exc)}


def serve(req_fd: int, resp_fd: int) -> None:
    """Read the program, compile and run it, report readiness, then serve calls until the worker closes the pipe."""
    reader = FrameReader()
    first = read_frame_blocking(req_fd, reader)
    if first is None:
        return
    solution, entry_point = first["solution"], first["entry_point"]
    del first
    try:
        code = compile(solution, "<solution>", "exec")
    except BaseException as e:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        write_frame(resp_fd, {"kind": "compile_error", "type": type(e).__name__, "traceback": _excerpt(e)})
        return
    ns = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(code, ns)
    except BaseException as e:
        write_frame(resp_fd, {**_exception_frame(e), "phase": "load"})
        return
    fn = ns.get(entry_point)
    if not callable(fn):
        write_frame(resp_fd, {"kind": "missing", "message": f"the program defines no function {entry_point!r}"})
        return
    write_frame(resp_fd, {"kind": "ready"})
    while True:
        req = read_frame_blocking(req_fd, reader)
        if req is None:
            return
        try:
            args, kwargs = codec.decode(req["args"]), codec.decode(req["kwargs"])
            value = ns[entry_point](*args, **kwargs)  # by name, as the tests would call it
            reply = {"kind": "ok", "value": codec.encode(value)}
        except codec.NotPlainData as e:
            reply = {"kind": "not_plain", "message": str(e)[:NAME_CHARS]}
        except BaseException as e:
            reply = _exception_frame(e)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        write_frame(resp_fd, reply)
