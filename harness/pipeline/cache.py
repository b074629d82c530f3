"""Content-addressed SQLite cache of generations and verdicts; what makes runs resumable.

Runs that share a cache file also share work: a process claims a generation (a row in `claims` naming
its host and pid) before computing it, and another process that needs the same generation waits for the
result instead of computing it again. A claim whose owner died, or that saw no progress for
`STALE_CLAIM_S`, is taken over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from tl_eval.harness.errors import OutputError
from tl_eval.harness.models.base import Generator
from tl_eval.harness.records import valid_text
from tl_eval.harness.types import Generation, GenerationRequest, Verdict

# `created` defaults to an expression every SQLite 3 has: unixepoch('subsec') needs 3.42 and is NULL
# before it. Rows are written with Python's time anyway, so caches created by older versions get it too.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
  key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason TEXT, prompt_tokens INTEGER,
  completion_tokens INTEGER, seconds REAL, created REAL DEFAULT ((julianday('now') - 2440587.5) * 86400.0));
CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
  key TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, claimed REAL NOT NULL);
"""

# A claim older than this with no progress of its owner is taken over even if the owner looks alive
# (another host, whose pids cannot be checked, or a reused pid). Owners refresh their claims as they finish
# generations, so only a run stuck for this long loses them.
STALE_CLAIM_S = float(os.environ.get("TL_EVAL_STALE_CLAIM_S", 600))
_HEARTBEAT_S = 5.0
_POLL_S = (0.05, 1.0)  # first and longest wait between looks at generations another run computes
_HOST = socket.gethostname()
# SQLite's own wait for a lock; then `_retry` goes on for the paths on which SQLite does not wait.
_BUSY_TIMEOUT_S = 30.0
LOCK_WAIT_S = float(os.environ.get("TL_EVAL_CACHE_LOCK_WAIT_S", 120))
_T = TypeVar("_T")


def _is_busy(err: sqlite3.OperationalError) -> bool:
    code = getattr(err, "sqlite_errorcode", None)  # Python >= 3.11; extended codes keep the primary in the low byte
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(err) or "busy" in str(err)


def generation_key(fingerprint: str, request: GenerationRequest) -> str:
    """Hash of everything that determines a generation: model, messages, sampling, sample index."""
    payload = {
        "model": fingerprint,
        "messages": list(request.messages),
        "sampling": request.sampling.to_dict(),
        "sample_index": request.sample_index,
    }
    # surrogatepass: a prompt that quotes model text with a lone surrogate still hashes (unchanged for valid text).
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
                          ).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Cache:
    """One SQLite file; every write is committed at once so that `kill -9` loses nothing finished."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self.owner = f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self._beat = 0.0
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise self._error(err) from err
        self._db = self._retry(self._open)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:" if self.path is None else str(self.path), check_same_thread=False,
                             isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        try:
            # WAL lets readers and the one writer proceed together. A cache file already in WAL mode (the mode
            # persists in the file) is left alone: switching needs an exclusive lock, and two processes that
            # both switch a new file from rollback mode deadlock, which SQLite answers with SQLITE_BUSY at once,
            # without waiting (the failure of two runs started together on a new cache).
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # the schema in one writer's transaction: racing creators take turns
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    def _retry(self, action: Callable[[], _T]) -> _T:
        """`action()`, again while SQLite answers that the file is busy or locked (paths on which it does not
        wait itself: a lock deadlock, WAL recovery by another process), for up to `LOCK_WAIT_S`; other errors
        and a lock held longer become one OutputError naming the cause."""
        deadline = time.monotonic() + LOCK_WAIT_S
        wait = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as err:
                if not _is_busy(err):
                    raise self._error(err) from err
                if time.monotonic() > deadline:
                    raise OutputError(
                        f"the generation cache {self.path} stayed locked for {LOCK_WAIT_S:.0f} s ({err}): another "
                        "process holds its write lock",
                        "wait for the other tl-eval run to finish, or pass --cache PATH to use a separate file; a "
                        "cache on a network filesystem (NFS, SMB) cannot be shared, SQLite's locks do not work "
                        "there") from err
                time.sleep(wait * (0.5 + random.random()))  # jittered: racing processes do not retry in step
                wait = min(wait * 2, 0.5)
            except (OSError, sqlite3.Error) as err:
                raise self._error(err) from err

    def _error(self, err: Exception) -> OutputError:
        return OutputError(f"cannot use the generation cache {self.path}: {err}",
                           "pass --cache PATH on a writable disk with free space (or --no-cache); "
                           "finished generations stay in the old file")

    def _execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._retry(lambda: self._db.execute(sql, args))

    def get_generation(self, key: str) -> Generation | None:
        with self._lock:
            row = self._execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, seconds FROM generations WHERE key=?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return Generation(text=row[0], finish_reason=row[1], prompt_tokens=row[2], completion_tokens=row[3],
                          seconds=row[4], cached=True)

    def put_generation(self, key: str, gen: Generation) -> None:
        with self._lock:
            if gen.finish_reason != "error":  # never cache failures: a restart must retry them
                self._execute(
                    "INSERT OR REPLACE INTO generations (key, text, finish_reason, prompt_tokens, completion_tokens,"
                    " seconds, created) VALUES (?,?,?,?,?,?,?)",
                    (key, gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens, gen.seconds,
                     time.time()),
                )
            self._execute("DELETE FROM claims WHERE key=? AND owner=?", (key, self.owner))
            now = time.time()
            if now - self._beat > _HEARTBEAT_S:  # progress keeps this run's other claims fresh
                self._beat = now
                self._execute("UPDATE claims SET claimed=? WHERE owner=?", (now, self.owner))

    # -- claims: sharing work between runs ------------------------------------------------------

    def _stale(self, host: str, pid: int, claimed: float, now: float) -> bool:
        if now - claimed > STALE_CLAIM_S:
            return True
        return host == _HOST and not _pid_alive(pid)

    def claim(self, keys: Iterable[str]) -> list[str]:
        """Claim the keys that are neither cached nor claimed by a live run; returns those now ours."""
        keys = list(keys)
        with self._lock:
            return self._retry(lambda: self._claim(keys))

    def _claim(self, keys: list[str]) -> list[str]:
        mine = []
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")  # one writer at a time: two runs never both get a key
        try:
            for key in keys:
                if self._db.execute("SELECT 1 FROM generations WHERE key=?", (key,)).fetchone():
                    continue
                row = self._db.execute("SELECT owner, host, pid, claimed FROM claims WHERE key=?", (key,)).fetchone()
                if row is not None and row[0] != self.owner and not self._stale(row[1], row[2], row[3], now):
                    continue
                self._db.execute("INSERT OR REPLACE INTO claims (key, owner, host, pid, claimed) VALUES (?,?,?,?,?)",
                                 (key, self.owner, _HOST, os.getpid(), now))
                mine.append(key)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return mine

    def release(self, keys: Iterable[str]) -> None:
        """Give up this run's claims on `keys` (unfinished work: another run may take it)."""
        with self._lock:
            for key in keys:
                self._execute("DELETE FROM claims WHERE key=? AND owner=?", (key, self.owner))

    # -- verdicts -------------------------------------------------------------------------------

    def get_verdict(self, key: str) -> Verdict | None:
        with self._lock:
            row = self._execute("SELECT verdict FROM verdicts WHERE key=?", (key,)).fetchone()
        return None if row is None else Verdict(**json.loads(row[0]))

    def put_verdict(self, key: str, verdict: Verdict) -> None:
        if verdict.status == "sandbox_error":  # infrastructure failures are retried next time
            return
        with self._lock:
            self._execute("INSERT OR REPLACE INTO verdicts (key, verdict) VALUES (?,?)",
                          (key, json.dumps(verdict.to_dict())))

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM claims WHERE owner=?", (self.owner,))
            except sqlite3.Error:
                pass  # closing must not hide the error that ended the run
            self._db.close()


class CachedGenerator:
    """Answers from the cache where it can and sends only the misses to the model, deduplicated.

    A miss that another run has claimed is waited for instead of computed; one whose claim is released
    without a result (that run failed or died) is claimed and computed here.
    """

    def __init__(self, generator: Generator, cache: Cache):
        self.generator = generator
        self.cache = cache
        self.fingerprint = generator.fingerprint()
        self._sampled_fingerprint = generator.sampled_fingerprint()
        self.model_calls = 0
        self.cache_hits = 0

    def generate(self, requests: Sequence[GenerationRequest],
                 on_done: Callable[[int], None] | None = None) -> list[Generation]:
        keys = [generation_key(self._sampled_fingerprint if r.sampling.temperature > 0 else self.fingerprint, r)
                for r in requests]
        results: list[Generation | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            pending.setdefault(key, []).append(i)

        def fill(key: str, gen: Generation) -> None:
            idx = pending.pop(key)
            for i in idx:
                results[i] = gen
            if on_done:
                on_done(len(idx))

        wait = _POLL_S[0]
        while pending:
            for key in list(pending):
                hit = self.cache.get_generation(key)
                if hit is not None:
                    self.cache_hits += len(pending[key])
                    fill(key, hit)
            if not pending:
                break
            mine = self.cache.claim(list(pending))
            if mine:
                self._compute(mine, pending, requests, fill)
                wait = _POLL_S[0]
            else:  # every remaining generation is being computed by another run
                time.sleep(wait)
                wait = min(wait * 2, _POLL_S[1])
        return results  # type: ignore[return-value]

    def _compute(self, keys: list[str], pending: dict[str, list[int]], requests: Sequence[GenerationRequest],
                 fill: Callable[[str, Generation], None]) -> None:
        done: set[int] = set()

        def finished(j: int, gen: Generation) -> None:
            if j in done:
                return
            done.add(j)
            # SQLite stores UTF-8 only: a lone surrogate (a scripted or remote model can send one) becomes U+FFFD
            # here, for the caller too, so a fresh run and its resume from the cache see the same text.
            gen = dataclasses.replace(gen, text=valid_text(gen.text))
            self.cache.put_generation(keys[j], gen)
            fill(keys[j], gen)

        self.model_calls += len(keys)
        try:
            outs = self.generator.generate([requests[pending[key][0]] for key in keys], on_done=finished)
            for j, gen in enumerate(outs):  # a backend that skipped on_done for some still answered them
                finished(j, gen)
        finally:
            self.cache.release(keys[j] for j in range(len(keys)) if j not in done)
