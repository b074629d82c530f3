"""What the forked child does to itself before it touches candidate code: rlimits, uid, Landlock, job dir.

The base seccomp filter is not here: the worker installs it on itself at start-up and the zygote and every child
inherit it (loading a filter costs ~0.25 ms per process, mostly the kernel compiling it).
"""

from __future__ import annotations

import ctypes
import os
import resource
from typing import NamedTuple

from . import landlock

JOB_DIR = "job"
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
# A fresh tmpfs per job: its inode numbers start over, and nothing written by an earlier job exists in it.
# Its pages are charged to the job's memory cgroup; inodes are capped so that empty files cannot grow it unbounded.
TMPFS_INODES = 65536
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.umount2, _LIBC.mount  # resolved here, once, rather than in every forked child
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


def mount_job_dir(job: str, uid: int | None, disk_mb: int, replace: bool) -> None:
    """Mount a new, size-limited tmpfs on `job` (the zygote, before each fork), detaching the previous job's.

    In the worker's mount namespace rather than one per job: a mount namespace per child cost ~2 ms per job on
    2 cores (copying the mount tree, and tearing it down when the job ends), one mount and one lazy unmount
    ~0.1 ms. The previous job's processes are all gone by then (the worker waits for its PID namespace to die).
    """
    libc = _LIBC
    if replace and libc.umount2(job.encode(), _MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), f"unmounting the last job's tmpfs on {job} failed")
    opts = f"size={int(disk_mb)}m,nr_inodes={TMPFS_INODES},mode=0700"
    if uid is not None:
        opts += f",uid={uid},gid={uid}"
    if libc.mount(b"tmpfs", job.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, opts.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mounting the job's tmpfs on {job} failed")


def confine(jobs_root: str, uid: int | None, limits: ChildLimits, ruleset: int | None, child_filter=None,
            fresh_dir: bool = False, job: str | None = None) -> str:
    """Apply every layer this tier uses, in an order where each step still has the rights it needs; returns the
    fresh job directory (the cwd and TMPDIR), which the child owns.

    `ruleset` is a Landlock ruleset fd the worker built once; `child_filter` the seccomp filter each child adds
    (namespace set-up, kernel objects numbered in sequence, ownership changes without a private uid).
    `fresh_dir`: the zygote mounted a new tmpfs as this job's directory; otherwise the child makes the job
    directory in the shared job root. (The job's memory cgroup needs nothing here: the zygote is in it.)
    `job`: the job directory, `<jobs_root>/job`, where the caller has it already.
    """
    os.setpgid(0, 0)
    if job is None:
        job = os.path.join(jobs_root, JOB_DIR)
    set_rlimits(limits)  # before the uid drop: RLIMIT_NPROC then binds the new, unprivileged uid
    if uid is not None:
        drop_privileges(uid)
    if ruleset is not None:
        landlock.restrict_self(ruleset)
    if child_filter is not None:
        child_filter.install()
    if not fresh_dir:
        os.mkdir(job, 0o700)
    os.chdir(job)
    if os.environ.get("TMPDIR") != job:  # the zygote sets it once for all its children
        os.environ["TMPDIR"] = job
    return job
