"""Helpers shared by the sandbox tests (imported explicitly; not a pytest conftest)."""

from __future__ import annotations

import os
from pathlib import Path

from tl_eval.harness.verify.code_job import CodeJob, CodeTest
from tl_eval.harness.verify.sandbox.pool import UID_BASE

SENTINEL = CodeJob(solution="def add(a, b):\n    return a + b\n", entry_point="add",
                   tests=(CodeTest("t0", "assert add(1, 2) == 3"), CodeTest("t1", "assert add(-1, 1) == 0")),
                   job_id="sentinel")


def job(solution: str, tests, entry_point: str = "f", time_limit_s: float | None = 1.0, context: str = "") -> CodeJob:
    if isinstance(tests, str):
        tests = [tests]
    return CodeJob(solution=solution, entry_point=entry_point, context=context, time_limit_s=time_limit_s,
                   tests=tuple(CodeTest(f"t{i}", t) for i, t in enumerate(tests)))


def sandbox_processes() -> list[int]:
    """Host pids under this test process's sandbox uids: empty whenever no verify() call is in flight.

    Only this process's block of uids counts: other test sessions on the machine run sandboxes of their own.
    Zombies do not count: in the tiers with a PID namespace per job the last job's first process, dead and with
    every other process of its namespace gone, stays a zombie until the zygote's next fork reaps it.
    """
    low = UID_BASE + (os.getpid() % 4_000_000) * 256
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1])
            state = next((l.split()[1] for l in status.splitlines() if l.startswith("State:")), "?")
            if low <= uid < low + 256 and state != "Z":
                pids.append(int(entry))
    return pids


def data_dir() -> Path:
    env = os.environ.get("TL_EVAL_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
