"""Writing run files safely: atomic replacement, write errors as one-line messages, writability checks."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tl_eval.harness.errors import OutputError

_RESUME = "finished generations are cached, so the same command then resumes"


def write_error(path: Path, err: OSError, flag: str) -> OutputError:
    """The OutputError for a failed write of `path`, with the fix that fits the errno."""
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free space on the disk that holds {path.parent}, or pass {flag} on another disk; {_RESUME}"
    elif err.errno == errno.ENOTDIR:
        fix = f"a part of {path.parent} is a file, not a folder: pass {flag} to a folder path"
    else:
        fix = f"pass {flag} to a folder you can write; {_RESUME}"
    return OutputError(f"cannot write {path}: {reason}", fix)


def atomic_write(path: Path, fill: Callable[[IO[str]], None], flag: str = "--output DIR") -> None:
    """Write `path` through a temp file in the same folder and rename it over the target.

    Readers (and a resumed run) see the old file or the new one, never a partial one; on any failure,
    Ctrl-C included, the temp file is removed and the target is left as it was.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique, hidden name: concurrent writers never share it, and a crash leaves no `config.tmp`.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        # backslashreplace: a lone surrogate that got this far is written as its escape (inside a JSON string,
        # the same character again) instead of failing the whole write.
        with open(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            fill(handle)
            handle.flush()
            # A full disk often shows only here (delayed allocation), before the rename makes it visible.
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise write_error(path, err, flag) from err
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_text(path: Path, text: str, flag: str = "--output DIR") -> None:
    atomic_write(path, lambda handle: handle.write(text), flag)


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_dir(folder: Path, what: str, flag: str) -> None:
    """OutputError unless files can be created in `folder` (or in the folder that would hold it).

    A real create is tried: permission bits say nothing for root or on a read-only mount. Nothing is left
    behind, and a folder that does not exist yet is not created.
    """
    folder = Path(folder)
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise OutputError(f"{what} {folder} cannot be created: {base} is a file, not a folder",
                          f"pass {flag} to a folder path")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        target = folder if base == folder else f"{folder} (in {base})"
        raise OutputError(f"{what} {target} is not writable: {err.strerror or err}",
                          f"pass {flag} to a folder you can write") from err


def check_writable_file(path: Path, what: str, flag: str) -> None:
    """OutputError unless `path` can be opened for writing (and its folder holds new files: SQLite's WAL)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder", f"pass {flag} to a file path")
    check_writable_dir(path.parent, f"the folder of {what}", flag)
    if path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        except OSError as err:
            raise OutputError(f"{what} {path} is not writable: {err.strerror or err}",
                              f"make it writable, or pass {flag} elsewhere") from err
