"""A seccomp-BPF deny-list for the child: no sockets, namespaces, tracing, mounts, kernel admin, SysV IPC,
xattr or timestamp changes.

Hand-written BPF through ctypes + prctl rather than libseccomp: the filter is a flat deny-list of about seventy
syscall numbers, and this way the sandbox works where libseccomp.so or a Python binding for the venv's
interpreter is missing (Debian's python3-seccomp only serves the system Python).
"""

from __future__ import annotations

import ctypes
import errno
import platform

# Syscall numbers per architecture (x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64: asm-generic).
_NAMES = ("socket", "ptrace", "pivot_root", "chroot", "kexec_load",
          "kexec_file_load", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "init_module",
          "finit_module", "delete_module", "reboot", "swapon", "swapoff", "process_vm_readv",
          "process_vm_writev", "userfaultfd", "io_uring_setup", "open_by_handle_at", "acct",
          "settimeofday", "clock_settime", "open_tree", "move_mount", "fsopen", "fsmount", "mount_setattr")
# What the zygote and a child (before its candidate code) need for the job's fresh namespaces: allowed by the
# worker's base filter, refused by the filter every child loads once its namespaces are set up.
NAMESPACE_SETUP = ("mount", "umount2", "unshare", "setns")
# State that would outlive a job or change host metadata that Landlock does not cover: SysV IPC objects and POSIX
# message queues (they survive the process), extended attributes and timestamps (Landlock checks neither).
_PERSISTENT = ("shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
               "semctl", "semtimedop", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
               "mq_getsetattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
               "fremovexattr", "setxattrat", "removexattrat", "utimensat", "utime", "utimes", "futimesat")
# Kernel objects numbered from counters that every process on the host shares: a job that creates some moves
# the number the next job's objects get, and reads it back with fstat (pipes, socket pairs and anonymous inodes
# take `get_next_ino()`, memfds the shm mount's counter, pidfds the pidfs inode sequence). The worker makes the
# child's pipes; the candidate makes none of its own.
SEQUENCED = ("pipe", "pipe2", "socketpair", "memfd_create", "memfd_secret", "pidfd_open")
# Without a private uid the candidate owns the host user's files: mode and owner changes are refused too.
_OWNERSHIP = ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat")
_X86_64 = dict(zip(_NAMES, (
    41, 101, 155, 161, 246, 320, 321, 298, 250, 248, 249, 175, 313, 176, 169, 167,
    168, 310, 311, 323, 425, 304, 163, 164, 227, 428, 429, 430, 432, 442)))
_X86_64.update(mount=165, umount2=166, unshare=272, setns=308)
_X86_64.update(zip(_PERSISTENT, (29, 30, 31, 67, 68, 69, 70, 71, 64, 65, 66, 220, 240, 241, 242, 243, 244, 245,
                                 188, 189, 190, 197, 198, 199, 463, 466, 280, 132, 235, 261)))
_X86_64.update(zip(SEQUENCED, (22, 293, 53, 319, 447, 434)))
_X86_64.update(zip(_OWNERSHIP, (90, 91, 268, 452, 92, 93, 94, 260)))
_AARCH64 = dict(zip(_NAMES, (
    198, 117, 41, 51, 104, 294, 280, 241, 219, 217, 218, 105, 273, 106, 142, 224, 225,
    270, 271, 282, 425, 265, 89, 170, 112, 428, 429, 430, 432, 442)))
_AARCH64.update(mount=40, umount2=39, unshare=97, setns=268)
_AARCH64.update(zip(_PERSISTENT[:26] + ("utimensat",), (194, 196, 195, 197, 186, 189, 188, 187, 190, 193, 191,
                                                        192, 180, 181, 182, 183, 184, 185, 5, 6, 7, 14, 15, 16,
                                                        463, 466, 88)))
_AARCH64.update(pipe2=59, socketpair=199, memfd_create=279, memfd_secret=447, pidfd_open=434)  # no pipe there
_AARCH64.update(fchmod=52, fchmodat=53, fchmodat2=452, fchown=55, fchownat=54)  # no chmod/chown/lchown there
_TABLES = {
    "x86_64": (0xC000003E, _X86_64, {"clone": 56, "clone3": 435, "fallocate": 285, "getsockopt": 55,
                                      "setsockopt": 54}),
    "aarch64": (0xC00000B7, _AARCH64, {"clone": 220, "clone3": 435, "fallocate": 47, "getsockopt": 209,
                                        "setsockopt": 208}),
}
_CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_CLONE_PIDFD = 0x1000
# SO_PASSPIDFD, SO_PEERPIDFD: a pidfd for the peer of a socket pair (itself), i.e. the pidfs inode sequence.
_PIDFD_SOCKOPTS = (76, 77)

_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _JA, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x05, 0x06
_RET_KILL_PROCESS, _RET_ALLOW, _RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Insn))]


def supported() -> bool:
    return platform.machine() in _TABLES


def build_filter(names: tuple[str, ...], base: bool) -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jt, jf, k) tuples for this machine's architecture: EPERM for `names`.

    `base`: the worker's filter, inherited by the zygote and every child; it adds the calls judged by their
    arguments (clone with namespace or pidfd flags, the pidfd socket options) and answers `fallocate` with
    EOPNOTSUPP, as a file system without it would: glibc's posix_fallocate then writes the blocks, so that
    RLIMIT_FSIZE counts them (ext4 does not apply it to blocks reserved past the end of a file).
    """
    arch, table, special = _TABLES[platform.machine()]
    numbers = {n: table[n] for n in names if n in table}
    eperm = _RET_ERRNO | errno.EPERM
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ_K, 1, 0, arch), (_RET_K, 0, 0, _RET_KILL_PROCESS), (_LD_W_ABS, 0, 0, 0)]
    if platform.machine() == "x86_64":
        prog += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, eperm)]  # the x32 ABI aliases every syscall
    for nr in sorted(set(numbers.values())):
        prog += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, eperm)]
    if base:
        prog += [(_JEQ_K, 0, 1, special["fallocate"]), (_RET_K, 0, 0, _RET_ERRNO | errno.EOPNOTSUPP)]
        # clone3 passes flags in memory that BPF cannot read: ENOSYS makes glibc fall back to clone.
        prog += [(_JEQ_K, 0, 1, special["clone3"]), (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)]
        prog += [(_JEQ_K, 0, 3, special["clone"]), (_LD_W_ABS, 0, 0, 16),  # low word of args[0] (little-endian)
                 (_JSET_K, 0, 1, _CLONE_NS_FLAGS | _CLONE_PIDFD), (_RET_K, 0, 0, eperm), (_LD_W_ABS, 0, 0, 0)]
        for call in ("getsockopt", "setsockopt"):
            prog += [(_JEQ_K, 0, 5, special[call]), (_LD_W_ABS, 0, 0, 32),  # low word of args[2]: optname
                     (_JEQ_K, 2, 0, _PIDFD_SOCKOPTS[0]), (_JEQ_K, 1, 0, _PIDFD_SOCKOPTS[1]),
                     (_JA, 0, 0, 1), (_RET_K, 0, 0, eperm)]
            prog += [(_LD_W_ABS, 0, 0, 0)]
    prog += [(_RET_K, 0, 0, _RET_ALLOW)]
    return prog


def base_names(fresh_namespaces: bool) -> tuple[str, ...]:
    """What the worker's filter refuses: everything, except the namespace set-up of a job when the tier gives each
    job fresh namespaces (the child refuses those itself once it has them: `child_names`)."""
    return _NAMES + _PERSISTENT + (() if fresh_namespaces else NAMESPACE_SETUP)


def child_names(fresh_namespaces: bool, ownership: bool) -> tuple[str, ...]:
    """What each child adds before its candidate code runs."""
    return (NAMESPACE_SETUP if fresh_namespaces else ()) + SEQUENCED + (_OWNERSHIP if ownership else ())


class Filter:
    """The filter built once in the worker; each child only makes the two prctl calls (building it costs ~1 ms)."""

    def __init__(self, names: tuple[str, ...], base: bool = False) -> None:
        if not supported():
            raise OSError(errno.ENOSYS, f"no seccomp syscall table for {platform.machine()}")
        insns = build_filter(names, base)
        self._arr = (_Insn * len(insns))(*[_Insn(*i) for i in insns])
        self._prog = _Prog(len(insns), self._arr)
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.prctl  # resolved here, once, rather than in every forked child

    def install(self) -> None:
        """Set no_new_privs and load the filter into the calling process (inherited by everything it forks)."""
        libc = self._libc
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(self._prog), 0, 0) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"prctl(PR_SET_SECCOMP) failed: {errno.errorcode.get(e, e)}")


def install() -> None:
    """Build and load the base filter in one go (for callers that confine a single process)."""
    Filter(base_names(False) + SEQUENCED, base=True).install()
