"""What the forked child does to itself before it touches candidate code: fds, rlimits, uid, Landlock, seccomp."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from harness.verify.sandbox import landlock, seccomp


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of one child, as the worker receives them from the host."""

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


def confine(tmpdir: str, uid: int | None, limits: ChildLimits, use_landlock: bool, use_seccomp: bool) -> None:
    """Apply every layer this tier uses, in an order where each step still has the rights it needs."""
    os.setpgid(0, 0)
    os.chdir(tmpdir)
    set_rlimits(limits)  # before the uid drop: RLIMIT_NPROC then binds the new, unprivileged uid
    if uid is not None:
        drop_privileges(uid)
    if use_landlock:
        landlock.restrict([tmpdir])
    if use_seccomp:
        seccomp.install()
