"""Several processes on one cache file at once (issue 33): none fails on a lock, each generation is computed once,
and a process killed in the middle of its writes leaves nothing that stops the others."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tl_eval.harness.errors import OutputError
from tl_eval.harness.models.base import Generator
from tl_eval.harness.pipeline import cache as cache_module
from tl_eval.harness.pipeline.cache import Cache, CachedGenerator
from tl_eval.harness.types import Generation, GenerationRequest, SamplingParams

# fork, not spawn: the workers need no fresh interpreter (milliseconds each, not seconds), and each opens its own
# connection after the fork, as separate runs do.
CTX = mp.get_context("fork")
KEYS = [f"problem-{i}" for i in range(12)]


class LoggingModel(Generator):
    """Writes one line per computed request to a file shared by all processes (O_APPEND: lines never interleave)."""

    spec = "logging"

    def __init__(self, calls: str, delay: float):
        self.calls, self.delay = calls, delay

    def fingerprint(self) -> str:
        return "logging-v1"

    def generate(self, requests, on_done=None):
        out = []
        for i, r in enumerate(requests):
            time.sleep(self.delay)
            fd = os.open(self.calls, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{r.messages[-1]['content']}\n".encode())
            os.close(fd)
            gen = Generation(r.messages[-1]["content"].upper(), "stop", 1, 1)
            out.append(gen)
            if on_done:
                on_done(i, gen)
        return out


def _request(text: str) -> GenerationRequest:
    return GenerationRequest(({"role": "user", "content": text},), SamplingParams())


def _run(path: str, calls: str, delay: float, seed: int, start, results) -> None:
    """One evaluation's worth of cache use: open, then the keys in stages of 3 in an order of its own."""
    start.wait()
    keys = KEYS[:]
    random.Random(seed).shuffle(keys)
    cache = Cache(Path(path))
    generator = CachedGenerator(LoggingModel(calls, delay), cache)
    texts = {}
    for i in range(0, len(keys), 3):
        stage = keys[i:i + 3]
        texts.update(zip(stage, (g.text for g in generator.generate([_request(k) for k in stage]))))
    cache.close()
    results.put((seed, texts))


def _start(path: Path, calls: Path, delays: list[float], seed0: int):
    start, results = CTX.Barrier(len(delays)), CTX.Queue()
    procs = [CTX.Process(target=_run, args=(str(path), str(calls), d, seed0 + k, start, results))
             for k, d in enumerate(delays)]
    for p in procs:
        p.start()
    return procs, results


def _lines(file: Path) -> list[str]:
    return file.read_text().split() if file.exists() else []


def test_four_runs_started_together_on_a_new_cache_share_the_work_twenty_times(tmp_path):
    for round_ in range(20):
        path, calls = tmp_path / f"c{round_}.sqlite", tmp_path / f"calls{round_}.txt"
        procs, results = _start(path, calls, [0.002] * 4, seed0=4 * round_)
        got = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0], f"round {round_}: a run failed"
        for _, texts in got:
            assert texts == {k: k.upper() for k in KEYS}
        made = _lines(calls)
        assert sorted(made) == sorted(KEYS), f"round {round_}: generations computed {len(made)} times for 12"
        assert sqlite3.connect(path).execute("SELECT count(*) FROM claims").fetchone()[0] == 0


def test_a_run_killed_in_the_middle_of_its_writes_does_not_stop_the_others(tmp_path):
    path, calls = tmp_path / "c.sqlite", tmp_path / "calls.txt"
    victim, victim_results = _start(path, calls, [0.05], seed0=100)
    deadline = time.monotonic() + 30
    while len(_lines(calls)) < 3 and time.monotonic() < deadline:  # it has claimed a stage and is writing
        time.sleep(0.01)
    others, results = _start(path, calls, [0.01] * 3, seed0=200)
    time.sleep(random.Random(0).uniform(0.0, 0.05))
    os.kill(victim[0].pid, signal.SIGKILL)
    got = [results.get(timeout=60) for _ in others]
    for p in [*victim, *others]:
        p.join(timeout=60)
    assert victim[0].exitcode == -signal.SIGKILL
    assert [p.exitcode for p in others] == [0, 0, 0]
    for _, texts in got:
        assert texts == {k: k.upper() for k in KEYS}
    made = _lines(calls)
    assert set(made) == set(KEYS)
    assert len(made) <= len(KEYS) + 1  # at most the generation the victim was computing when killed is redone
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == len(KEYS)
    assert db.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # the dead run's claims were taken over
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_lock_held_too_long_is_named_as_a_lock(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    Cache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # what a stuck writer looks like to the others
    monkeypatch.setattr(cache_module, "LOCK_WAIT_S", 0.5)
    monkeypatch.setattr(cache_module, "_BUSY_TIMEOUT_S", 0.1)
    with pytest.raises(OutputError) as err:
        Cache(path)
    assert "stayed locked" in str(err.value) and "another process holds its write lock" in str(err.value)
    assert "separate file" in err.value.fix and "free space" not in err.value.fix
    holder.execute("ROLLBACK")
    Cache(path).close()  # and once it lets go, the file opens
