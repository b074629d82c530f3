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
_NAMES = ("socket", "ptrace", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "kexec_load",
          "kexec_file_load", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "init_module",
          "finit_module", "delete_module", "reboot", "swapon", "swapoff", "process_vm_readv",
          "process_vm_writev", "userfaultfd", "io_uring_setup", "open_by_handle_at", "acct",
          "settimeofday", "clock_settime", "open_tree", "move_mount", "fsopen", "fsmount", "mount_setattr")
# State that would outlive a job or change host metadata that Landlock does not cover: SysV IPC objects and POSIX
# message queues (they survive the process), extended attributes and timestamps (Landlock checks neither).
_PERSISTENT = ("shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
               "semctl", "semtimedop", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
               "mq_getsetattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
               "fremovexattr", "setxattrat", "removexattrat", "utimensat", "utime", "utimes", "futimesat")
# Without a private uid the candidate owns the host user's files: mode and owner changes are refused too.
_OWNERSHIP = ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat")
_X86_64 = dict(zip(_NAMES, (
    41, 101, 165, 166, 155, 161, 272, 308, 246, 320, 321, 298, 250, 248, 249, 175, 313, 176, 169, 167,
    168, 310, 311, 323, 425, 304, 163, 164, 227, 428, 429, 430, 432, 442)))
_X86_64.update(zip(_PERSISTENT, (29, 30, 31, 67, 68, 69, 70, 71, 64, 65, 66, 220, 240, 241, 242, 243, 244, 245,
                                 188, 189, 190, 197, 198, 199, 463, 466, 280, 132, 235, 261)))
_X86_64.update(zip(_OWNERSHIP, (90, 91, 268, 452, 92, 93, 94, 260)))
_AARCH64 = dict(zip(_NAMES, (
    198, 117, 40, 39, 41, 51, 97, 268, 104, 294, 280, 241, 219, 217, 218, 105, 273, 106, 142, 224, 225,
    270, 271, 282, 425, 265, 89, 170, 112, 428, 429, 430, 432, 442)))
_AARCH64.update(zip(_PERSISTENT[:26] + ("utimensat",), (194, 196, 195, 197, 186, 189, 188, 187, 190, 193, 191,
                                                        192, 180, 181, 182, 183, 184, 185, 5, 6, 7, 14, 15, 16,
                                                        463, 466, 88)))
_AARCH64.update(fchmod=52, fchmodat=53, fchmodat2=452, fchown=55, fchownat=54)  # no chmod/chown/lchown there
_TABLES = {
    "x86_64": (0xC000003E, _X86_64, {"clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, _AARCH64, {"clone": 220, "clone3": 435}),
}
_CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_RET_KILL_PROCESS, _RET_ALLOW, _RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Insn))]


def supported() -> bool:
    return platform.machine() in _TABLES


def build_filter(ownership: bool = False) -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jt, jf, k) tuples for this machine's architecture.

    `ownership`: also refuse chmod/chown (for a child that runs as the host user rather than a private uid).
    """
    arch, table, clone = _TABLES[platform.machine()]
    names = _NAMES + _PERSISTENT + (_OWNERSHIP if ownership else ())
    numbers = {n: table[n] for n in names if n in table}
    eperm = _RET_ERRNO | errno.EPERM
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ_K, 1, 0, arch), (_RET_K, 0, 0, _RET_KILL_PROCESS), (_LD_W_ABS, 0, 0, 0)]
    if platform.machine() == "x86_64":
        prog += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, eperm)]  # the x32 ABI aliases every syscall
    for nr in sorted(set(numbers.values())):
        prog += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, eperm)]
    # clone3 passes flags in memory that BPF cannot read: ENOSYS makes glibc fall back to clone.
    prog += [(_JEQ_K, 0, 1, clone["clone3"]), (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    prog += [(_JEQ_K, 0, 3, clone["clone"]), (_LD_W_ABS, 0, 0, 16),  # low word of args[0] (little-endian)
             (_JSET_K, 0, 1, _CLONE_NS_FLAGS), (_RET_K, 0, 0, eperm)]
    prog += [(_RET_K, 0, 0, _RET_ALLOW)]
    return prog


class Filter:
    """The filter built once in the worker; each child only makes the two prctl calls (building it costs ~1 ms)."""

    def __init__(self, ownership: bool = False) -> None:
        if not supported():
            raise OSError(errno.ENOSYS, f"no seccomp syscall table for {platform.machine()}")
        insns = build_filter(ownership)
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
    """Build and load the filter in one go (for callers that confine a single process)."""
    Filter().install()
