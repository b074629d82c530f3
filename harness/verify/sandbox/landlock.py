"""Landlock: the child may read only an allowlist, write only beneath its job root, open no TCP ports, and
signal nobody outside its domain.

Three syscalls through ctypes; the PyPI bindings are young and would add a dependency for about fifty lines.
"""

from __future__ import annotations

import ctypes
import functools
import os

_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # same numbers on every architecture
_VERSION_FLAG = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
_WRITE_RIGHTS_V1 = sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make_*
_REFER = 1 << 13
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2
READ = _READ_FILE | _READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl  # resolved here, once, rather than in every forked child


@functools.cache
def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is unavailable."""
    v = _libc.syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION_FLAG))
    return max(int(v), 0)


def _fs_rights(abi: int) -> int:
    """Every file-system right this ABI knows: handled means denied unless a rule allows it."""
    rights = _WRITE_RIGHTS_V1 | READ | _EXECUTE
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def make_ruleset(writable_dirs: list[str], readable: list[str], listable: list[str] = [],
                 writable_files: list[str] = ["/dev/null"]) -> int:
    """A ruleset fd for `restrict_self`: full access beneath `writable_dirs`, read-only access to `readable`
    (directories: beneath them; files: that file), directory listing only beneath `listable`, nothing else;
    no TCP; signals and abstract sockets scoped.

    Built once by the worker; a rule holds the inode, not the path. Missing `readable` paths are skipped.
    """
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available on this kernel")
    fs = _fs_rights(abi)
    attr = _RulesetAttr(fs, _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0,
                        _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    file_only = _WRITE_FILE | _READ_FILE | _EXECUTE | _TRUNCATE | _IOCTL_DEV  # rights a rule on a file may hold
    try:
        rules = [(d, fs, True) for d in writable_dirs]
        rules += [(f, fs & (_WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV), True) for f in writable_files]
        rules += [(p, READ, False) for p in readable] + [(p, _READ_DIR, False) for p in listable]
        for path, rights, required in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                if required:
                    raise
                continue
            try:
                if not os.path.isdir(f"/proc/self/fd/{fd}"):
                    rights &= file_only
                rule = _PathBeneath(rights, fd)
                if _libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                 ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def restrict_self(ruleset: int) -> None:
    """Confine the calling process (and everything it forks later) with a ruleset from `make_ruleset`."""
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if _libc.syscall(_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
