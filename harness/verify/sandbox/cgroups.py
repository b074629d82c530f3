"""Host side: one memory cgroup per worker, so a job's whole process tree shares one memory limit.

Layout under the host process's own memory cgroup: `tl-sandbox-<hostpid>-<n>/worker` holds bwrap, the worker and
the zygote (no limit: they are trusted); `.../job` has `memory_mb` as its limit, and every confined child moves
itself into it before it drops root (by writing "0" to an inherited fd of `job/cgroup.procs`). Two children rather
than processes in the parent because cgroup v2 allows no processes in a cgroup whose children have controllers.
cgroup v1 (a `memory` hierarchy) and v2 (a `memory` controller delegated to this process's cgroup) both work;
where neither is writable the sandbox falls back to per-process limits (`available()` says why).
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "tl-sandbox-"


@dataclass
class MemoryCgroup:
    base: Path  # this worker's tl-sandbox-* directory
    version: int

    @property
    def job(self) -> Path:
        return self.base / "job"

    @property
    def worker(self) -> Path:
        return self.base / "worker"

    def oom_kills(self) -> Path:
        """The file whose `oom_kill N` line counts the job cgroup's OOM kills."""
        return self.job / ("memory.events" if self.version == 2 else "memory.oom_control")

    def remove(self) -> None:
        """Kill whatever is left in the worker's cgroups and remove them (after the worker was stopped)."""
        for cg in (self.job, self.worker, self.base):
            for _ in range(50):
                if not cg.exists():
                    break
                for line in _read(cg / "cgroup.procs").split():
                    try:
                        os.kill(int(line), signal.SIGKILL)
                    except (ProcessLookupError, ValueError, PermissionError):
                        pass
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _own_memory_cgroup() -> tuple[Path, int] | None:
    """The directory of this process's memory cgroup and the cgroup version, or None."""
    mounts: dict[str, Path] = {}
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) < 3:
            continue
        if rfields[0] == "cgroup2":
            mounts.setdefault("v2", Path(fields[4]))
        elif rfields[0] == "cgroup" and "memory" in rfields[2].split(","):
            mounts.setdefault("v1", Path(fields[4]))
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        hid, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") and "v1" in mounts:
            return mounts["v1"] / path.lstrip("/"), 1
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        hid, controllers, path = line.split(":", 2)
        if hid == "0" and "v2" in mounts:
            d = mounts["v2"] / path.lstrip("/")
            if "memory" in _read(d / "cgroup.controllers").split():
                return d, 2
    return None


def remove_stale() -> None:
    """Remove the cgroups that tl-eval processes which no longer exist left behind (e.g. after `kill -9`)."""
    own = _own_memory_cgroup()
    if own is None or not own[0].is_dir():
        return
    for d in own[0].glob(PREFIX + "*"):
        m = re.match(PREFIX + r"(\d+)-", d.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            MemoryCgroup(d, own[1]).remove()


def create(tag: str, memory_mb: int) -> tuple[MemoryCgroup | None, str]:
    """A fresh cgroup pair for one worker, or (None, why not)."""
    own = _own_memory_cgroup()
    if own is None:
        return None, "no memory cgroup (v1 hierarchy or v2 controller) is visible to this process"
    parent, version = own
    base = parent / f"{PREFIX}{os.getpid()}-{tag}"
    try:
        if version == 2:
            # The controller must be enabled for our children; this fails if our own cgroup holds processes.
            sub = parent / "cgroup.subtree_control"
            if "memory" not in _read(sub).split():
                sub.write_text("+memory")
        base.mkdir()
        cg = MemoryCgroup(base, version)
        if version == 2:
            (base / "cgroup.subtree_control").write_text("+memory")
        cg.worker.mkdir()
        cg.job.mkdir()
        limit = str(memory_mb * 1024 * 1024)
        if version == 2:
            (cg.job / "memory.max").write_text(limit)
            if (cg.job / "memory.swap.max").exists():
                (cg.job / "memory.swap.max").write_text("0")
        else:
            (cg.job / "memory.limit_in_bytes").write_text(limit)
            if (cg.job / "memory.memsw.limit_in_bytes").exists():
                try:
                    (cg.job / "memory.memsw.limit_in_bytes").write_text(limit)
                except OSError:
                    pass
        return cg, ""
    except OSError as e:
        if base.exists():
            MemoryCgroup(base, version).remove()
        return None, f"cannot create a memory cgroup under {parent}: {e.strerror or e}"
