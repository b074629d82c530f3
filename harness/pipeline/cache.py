"""Content-addressed SQLite cache of generations and verdicts; what makes runs resumable."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.models.base import Generator
from harness.types import Generation, GenerationRequest, Verdict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
  key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason TEXT, prompt_tokens INTEGER,
  completion_tokens INTEGER, seconds REAL, created REAL DEFAULT (unixepoch('subsec')));
CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL);
"""


def generation_key(fingerprint: str, request: GenerationRequest) -> str:
    """Hash of everything that determines a generation: model, messages, sampling, sample index."""
    payload = {
        "model": fingerprint,
        "messages": list(request.messages),
        "sampling": request.sampling.to_dict(),
        "sample_index": request.sample_index,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Cache:
    """One SQLite file; every write is committed at once so that `kill -9` loses nothing finished."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        target = ":memory:" if path is None else str(path)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def get_generation(self, key: str) -> Generation | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, seconds FROM generations WHERE key=?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return Generation(text=row[0], finish_reason=row[1], prompt_tokens=row[2], completion_tokens=row[3],
                          seconds=row[4], cached=True)

    def put_generation(self, key: str, gen: Generation) -> None:
        if gen.finish_reason == "error":  # never cache failures: a restart must retry them
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO generations (key, text, finish_reason, prompt_tokens, completion_tokens, seconds)"
                " VALUES (?,?,?,?,?,?)",
                (key, gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens, gen.seconds),
            )

    def get_verdict(self, key: str) -> Verdict | None:
        with self._lock:
            row = self._db.execute("SELECT verdict FROM verdicts WHERE key=?", (key,)).fetchone()
        return None if row is None else Verdict(**json.loads(row[0]))

    def put_verdict(self, key: str, verdict: Verdict) -> None:
        if verdict.status == "sandbox_error":  # infrastructure failures are retried next time
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO verdicts (key, verdict) VALUES (?,?)",
                             (key, json.dumps(verdict.to_dict())))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedGenerator:
    """Answers from the cache where it can and sends only the misses to the model, deduplicated."""

    def __init__(self, generator: Generator, cache: Cache):
        self.generator = generator
        self.cache = cache
        self.fingerprint = generator.fingerprint()
        self.model_calls = 0
        self.cache_hits = 0

    def generate(self, requests: Sequence[GenerationRequest],
                 on_done: Callable[[int], None] | None = None) -> list[Generation]:
        keys = [generation_key(self.fingerprint, r) for r in requests]
        results: list[Generation | None] = [None] * len(requests)
        misses: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self.cache.get_generation(key)
            if hit is not None:
                results[i] = hit
                self.cache_hits += 1
                if on_done:
                    on_done(1)
            else:
                misses.setdefault(key, []).append(i)
        if misses:
            todo = [(key, idx) for key, idx in misses.items()]

            def done(j: int, gen: Generation) -> None:
                key, idx = todo[j]
                self.cache.put_generation(key, gen)
                for i in idx:
                    results[i] = gen
                if on_done:
                    on_done(len(idx))

            self.model_calls += len(todo)
            self.generator.generate([requests[idx[0]] for _, idx in todo], on_done=done)
        return results  # type: ignore[return-value]
