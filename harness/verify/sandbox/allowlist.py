"""What a confined child may read: the standard library (never site-packages), the shared libraries extension
modules load, a few device and loader files. Everything else on disk, benchmark data, the project checkout, run
directories, caches and home directories among them, is outside the allowlist; so is `/proc`. Through /proc a job
would read the counters of processes it does not own (the zygote's page faults of reaped children, the host's
fork count in /proc/stat, its memory and interrupt statistics), and each lookup there numbers a new inode from a
counter the whole host shares, which a later job could read back.

Computed by the worker, inside its tier's view of the file system, and enforced with Landlock in every tier that
has it; bwrap additionally mounts only these trees (`tiers.bwrap_prefix`).
"""

from __future__ import annotations

import os
import sys

SITE_DIRS = ("site-packages", "dist-packages")
FILES = ("/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full")
SHARED = ("/usr/share/zoneinfo",)


def stdlib_dir() -> str:
    return os.path.dirname(os.path.realpath(os.__file__))


def lib_dirs() -> list[str]:
    """Where the dynamic loader finds the libraries of the interpreter's extension modules."""
    arch = getattr(sys.implementation, "_multiarch", "") or ""
    dirs = ["/lib64", "/usr/lib64"]
    if arch:
        dirs += [f"/lib/{arch}", f"/usr/lib/{arch}"]
    return dirs


def readable() -> tuple[list[str], list[str]]:
    """(paths readable with everything beneath, directories only listable): for `landlock.make_ruleset`.

    The stdlib directory itself must be listable (the import system lists it to find modules), which lists its
    site-packages too; the files beneath site-packages stay unreadable.
    """
    std = stdlib_dir()
    full = [os.path.join(std, e) for e in sorted(os.listdir(std)) if e not in SITE_DIRS]
    base_lib = os.path.dirname(std)
    full += [os.path.join(base_lib, e) for e in sorted(os.listdir(base_lib)) if e.startswith("libpython")]
    full += lib_dirs() + list(FILES) + list(SHARED)
    return full, [std]
