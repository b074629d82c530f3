"""Model files: the cache folder and sha256 digests remembered per file state."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CACHE_ENV = "TL_EVAL_CACHE"
_CHUNK = 1 << 22


def models_cache_dir() -> Path:
    """`$TL_EVAL_CACHE/models`, else `~/.cache/tl-eval/models`."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "tl-eval"
    return base / "models"


def _state(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _memo_path(path: Path) -> Path:
    # One small memo per file, named after the absolute path, so that read-only model folders work too.
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return models_cache_dir() / "hashes" / f"{key}.json"


def sha256_file(path: Path, *, trust_memo: bool = True) -> str:
    """The file's sha256; reuses a digest recorded for the same (size, mtime, inode) unless `trust_memo` is False."""
    path = Path(path)
    memo = _memo_path(path)
    state = _state(path)
    if trust_memo and memo.is_file():
        try:
            record = json.loads(memo.read_text())
            if record.get("state") == state and record.get("path") == str(path.resolve()):
                return record["sha256"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged memo only costs a re-hash
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    sha = digest.hexdigest()
    record_sha256(path, sha, state)
    return sha


def record_sha256(path: Path, sha: str, state: dict[str, int] | None = None) -> None:
    """Remember `sha` for the file's current state (best effort: an unwritable cache only costs re-hashing)."""
    memo = _memo_path(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"path": str(Path(path).resolve()), "state": state or _state(path), "sha256": sha}))
        os.replace(tmp, memo)
    except OSError:
        pass


def fingerprint_file(path: Path) -> str:
    """A short content identity for a weights file (sha256 prefix)."""
    return sha256_file(path)[:16]
