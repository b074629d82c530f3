"""What the forked child does to itself before it touches candidate code: rlimits, uid, Landlock, job dir.

The base seccomp filter is not here: the worker installs it on itself at start-up and the zygote and every child
inherit it (loading a filter costs ~0.25 ms per process, mostly the kernel compiling it).
"""

from __future__ import annotations

import os
import resource
from typing import NamedTuple

from . import landlock

JOB_DIR = "job"
# Without a memory cgroup the job's memory is bounded by this many processes of RLIMIT_AS each.
NPROC_WITHOUT_CGROUP = 8


class ChildLimits(NamedTuple):
    """Resource limits of one child, as the worker receives them from the host.

    A NamedTuple, not a dataclass: dataclasses imports inspect and dis into the worker, and every module the
    worker holds is copied into each forked child.
    """

    memory_mb: int = 1024
    file_size_mb: int = 16
    cpu_s: int = 30
    nproc: int = 32
    nofile: int = 256


def set_rlimits(limits: ChildLimits) -> None:
    mb = 1024 * 1024
    for res, value in ((resource.RLIMIT_AS, limits.memory_mb * mb), (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
                       (resource.RLIMIT_CPU, limits.cpu_s), (resource.RLIMIT_CORE, 0),
                       (resource.RLIMIT_NOFILE, limits.nofile), (resource.RLIMIT_NPROC, limits.nproc)):
        resource.setrlimit(res, (value, value))


def drop_privileges(uid: int) -> None:
    """Become `uid` for real, effective and saved ids (which clears every capability); no-op unless root."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise OSError("could not drop root")


def confine(jobs_root: str, uid: int | None, limits: ChildLimits, ruleset: int | None, ownership_filter=None) -> str:
    """Apply every layer this tier uses, in an order where each step still has the rights it needs; returns the
    fresh job directory (the cwd and TMPDIR), made by the child itself so that it owns it.

    `ruleset` is a Landlock ruleset fd the worker built once; `ownership_filter` an extra seccomp filter for a
    child that keeps the host user's uid. (The job's memory cgroup needs nothing here: the zygote is in it.)
    """
    os.setpgid(0, 0)
    set_rlimits(limits)  # before the uid drop: RLIMIT_NPROC then binds the new, unprivileged uid
    if uid is not None:
        drop_privileges(uid)
    if ruleset is not None:
        landlock.restrict_self(ruleset)
    if ownership_filter is not None:
        ownership_filter.install()
    job = os.path.join(jobs_root, JOB_DIR)
    os.mkdir(job, 0o700)
    os.chdir(job)
    os.environ["TMPDIR"] = job
    return job
