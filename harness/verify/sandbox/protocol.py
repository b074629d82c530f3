"""Length-prefixed JSON frames over pipes, between host and worker and between worker and child."""

from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # host <-> worker: the host's own jobs and the worker's bounded replies
# child -> worker: the worker decodes what the child wrote, so the child's bytes must not set the worker's memory.
# A verdict needs a return value to compare with a test's expected value; 1 MiB of JSON and 50,000 lists, dicts,
# tuples or sets bound the decoded tree to a few tens of MB (tests/test_sandbox_resources.py measures it).
REPLY_MAX = 1 << 20
REPLY_CONTAINERS = 50_000


class FrameError(Exception):
    """The peer sent something that is not a frame (a bug, or an attack from the child's side)."""


class FrameTooLarge(FrameError):
    """A frame over the reader's byte or container limit; refused before it is buffered or decoded."""


# Built once: json.dumps/json.loads rebuild or re-detect per call, which shows on the per-call path.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder()


def pack(obj) -> bytes:
    body = _ENCODER.encode(obj).encode()
    return HEADER.pack(len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_frame(fd: int, obj) -> None:
    write_all(fd, pack(obj))


class FrameReader:
    """Accumulates bytes from a non-blocking or polled fd and hands out whole frames."""

    def __init__(self, max_frame: int = MAX_FRAME, max_containers: int | None = None):
        self.buf = bytearray()
        self.max_frame = max_frame
        self.max_containers = max_containers
        self.eof = False

    def feed(self, fd: int) -> None:
        # 64 KiB, a pipe's buffer: a bigger read size makes malloc map and unmap fresh pages on every call.
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            self.eof = True
        self.buf += chunk

    def next_frame(self):
        """The next complete frame, or None if more bytes are needed."""
        if len(self.buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self.buf)
        if size > self.max_frame:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the {self.max_frame}-byte limit")
        if len(self.buf) < HEADER.size + size:
            return None
        body = self.buf[HEADER.size:HEADER.size + size]
        del self.buf[:HEADER.size + size]
        if self.max_containers is not None:
            # An upper bound (brackets inside strings count too), cheap next to decoding: the JSON tree of
            # b"[[],[],...]" is ~20 times its bytes.
            containers = body.count(b"[") + body.count(b"{")
            if containers > self.max_containers:
                raise FrameTooLarge(f"frame of {containers} containers exceeds the {self.max_containers} limit")
        try:
            return _DECODER.decode(body.decode())  # UnicodeDecodeError is a ValueError too
        except (ValueError, RecursionError) as e:
            raise FrameError(f"undecodable frame: {e}") from None


def read_frame_blocking(fd: int, reader: FrameReader):
    """Block until one frame arrives; None at end of stream."""
    while True:
        frame = reader.next_frame()
        if frame is not None:
            return frame
        if reader.eof:
            return None
        reader.feed(fd)
