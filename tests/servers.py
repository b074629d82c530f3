"""Test servers (llama.cpp's or vLLM's): a free port to start one on, and waiting for it to answer or failing with its log."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest


def wait_until_serving(proc: subprocess.Popen, url: str, log: Path, timeout_s: float, name: str) -> None:
    """Return once GET url/models answers 200; pytest.fail with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} at {url} not ready after {timeout_s:.0f} s")
        time.sleep(0.5)


def free_port() -> int:
    """A TCP port nothing listens on now (the server binds it a moment later)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
