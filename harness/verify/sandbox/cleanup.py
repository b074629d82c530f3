"""Emptying a directory a candidate filled: iterative, relative to directory fds, never following links.

`shutil.rmtree` recurses on the Python stack (a 2,000-level tree raises RecursionError) and builds full paths
(past PATH_MAX at that depth); it also pulls compression libraries into the lean worker. Here every nested
directory is moved up to the top before it is emptied, so at most two directories are open at once.
"""

from __future__ import annotations

import errno
import os

_TAKEN = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _entries(fd: int) -> list[tuple[str, bool]]:
    with os.scandir(fd) as it:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]


def empty_dir(path: str) -> None:
    """Remove everything beneath `path` (which stays); raises OSError if something cannot be removed."""
    top = os.open(path, _DIR_FLAGS)
    serial = 0
    try:
        while True:
            entries = _entries(top)
            if not entries:
                return
            for name, is_dir in entries:
                if not is_dir:
                    os.unlink(name, dir_fd=top)
                    continue
                fd = os.open(name, _DIR_FLAGS, dir_fd=top)
                try:
                    for inner, inner_is_dir in _entries(fd):
                        if not inner_is_dir:
                            os.unlink(inner, dir_fd=fd)
                            continue
                        while True:  # a name the candidate chose may already exist at the top: take the next one
                            serial += 1
                            try:
                                os.rename(inner, f".tl-up-{serial}", src_dir_fd=fd, dst_dir_fd=top)
                                break
                            except OSError as e:
                                if e.errno not in _TAKEN:
                                    raise
                finally:
                    os.close(fd)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)


def rmtree(path: str) -> None:
    """Host side: remove a worker's directory (it may hold a 2,000-level tree), best effort."""
    if os.path.isdir(path) and not os.path.islink(path):
        try:
            empty_dir(path)
            os.rmdir(path)
        except OSError:
            import shutil  # the host only: the worker must not load it

            shutil.rmtree(path, ignore_errors=True)
