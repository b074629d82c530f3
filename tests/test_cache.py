"""The generation cache: keys, persistence across processes, dedup, and what is never cached."""

import sqlite3

from tl_eval.harness.models.base import Generator
from tl_eval.harness.pipeline.cache import Cache, CachedGenerator, generation_key
from tl_eval.harness.types import Generation, GenerationRequest, SamplingParams, Verdict


class CountingModel(Generator):
    spec = "counting"

    def __init__(self, fail_on: str | None = None):
        self.calls = []
        self.fail_on = fail_on

    def fingerprint(self) -> str:
        return "counting-v1"

    def generate(self, requests, on_done=None):
        out = []
        for i, r in enumerate(requests):
            self.calls.append(r)
            text = r.messages[-1]["content"].upper()
            g = Generation(text, "error" if text == self.fail_on else "stop", 3, 5)
            out.append(g)
            if on_done:
                on_done(i, g)
        return out


def req(text: str, i: int = 0, temperature: float = 0.0) -> GenerationRequest:
    return GenerationRequest(({"role": "user", "content": text},), SamplingParams(temperature=temperature), i)


def test_key_depends_on_everything_that_changes_the_output():
    base = generation_key("m", req("a"))
    assert generation_key("m", req("a")) == base
    assert generation_key("m2", req("a")) != base
    assert generation_key("m", req("b")) != base
    assert generation_key("m", req("a", i=1)) != base
    assert generation_key("m", req("a", temperature=0.7)) != base


def test_second_pass_makes_no_model_calls_and_survives_reopen(tmp_path):
    path = tmp_path / "c.sqlite"
    model = CountingModel()
    cg = CachedGenerator(model, Cache(path))
    first = cg.generate([req("x"), req("y"), req("x")])  # duplicate request answered once
    assert [g.text for g in first] == ["X", "Y", "X"]
    assert len(model.calls) == 2 and cg.model_calls == 2
    cg.cache.close()

    model2 = CountingModel()
    cg2 = CachedGenerator(model2, Cache(path))
    again = cg2.generate([req("x"), req("y")])
    assert [g.text for g in again] == ["X", "Y"] and all(g.cached for g in again)
    assert model2.calls == [] and cg2.cache_hits == 2


def test_each_finished_generation_is_committed_before_the_batch_ends(tmp_path):
    path = tmp_path / "c.sqlite"

    class Dies(CountingModel):
        def generate(self, requests, on_done=None):
            on_done(0, Generation("FIRST", "stop", 1, 1))
            raise KeyboardInterrupt  # killed mid-batch

    cg = CachedGenerator(Dies(), Cache(path))
    try:
        cg.generate([req("first"), req("second")])
    except KeyboardInterrupt:
        pass
    # Another connection (as a restarted process would open) already sees the finished one.
    rows = sqlite3.connect(path).execute("SELECT text FROM generations").fetchall()
    assert rows == [("FIRST",)]


def test_errors_and_sandbox_errors_are_not_cached(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    model = CountingModel(fail_on="BAD")
    cg = CachedGenerator(model, cache)
    cg.generate([req("bad")])
    cg.generate([req("bad")])
    assert len(model.calls) == 2
    cache.put_verdict("k1", Verdict("sandbox_error"))
    cache.put_verdict("k2", Verdict("fail", failing_test="t1"))
    assert cache.get_verdict("k1") is None
    assert cache.get_verdict("k2").failing_test == "t1"


def test_created_is_recorded_on_every_sqlite_version(tmp_path):
    """unixepoch('subsec') is NULL before SQLite 3.42 (Debian 12 ships 3.40); caches made by older versions
    keep that default, so the time is written explicitly."""
    import time

    path = tmp_path / "c.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE generations (key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason TEXT, "
                "prompt_tokens INTEGER, completion_tokens INTEGER, seconds REAL, "
                "created REAL DEFAULT (unixepoch('subsec')))")
    old.commit()
    old.close()
    for db in (path, tmp_path / "new.sqlite"):
        cache = Cache(db)
        cache.put_generation("k", Generation("t", "stop", 1, 1))
        (created,) = sqlite3.connect(db).execute("SELECT created FROM generations").fetchone()
        assert created is not None and abs(created - time.time()) < 60
        cache.close()
    fresh = sqlite3.connect(tmp_path / "new.sqlite")
    fresh.execute("INSERT INTO generations (key, text) VALUES ('d', 'x')")  # the column default itself
    (created,) = fresh.execute("SELECT created FROM generations WHERE key='d'").fetchone()
    assert created is not None and abs(created - time.time()) < 60


def test_claimed_generations_are_left_to_their_owner_until_released(tmp_path):
    path = tmp_path / "c.sqlite"
    a, b = Cache(path), Cache(path)  # two runs on one file
    key = generation_key("m", req("x"))
    assert a.claim([key]) == [key]
    assert b.claim([key]) == []  # a live owner holds it
    a.release([key])
    assert b.claim([key]) == [key]
    b.put_generation(key, Generation("X"))
    assert a.claim([key]) == []  # cached now: nothing to claim
    assert sqlite3.connect(path).execute("SELECT count(*) FROM claims").fetchone()[0] == 0


def test_a_waiting_run_computes_what_the_owner_gave_up(tmp_path):
    import threading

    path = tmp_path / "c.sqlite"
    owner, waiter = Cache(path), Cache(path)
    keys = [generation_key("counting-v1", req(t)) for t in ("x", "y")]
    assert owner.claim(keys) == keys
    model = CountingModel()
    out = {}
    waiting = CachedGenerator(model, waiter)
    thread = threading.Thread(target=lambda: out.update(r=waiting.generate([req("x"), req("y")])))
    thread.start()
    owner.put_generation(keys[0], Generation("FROM OWNER"))  # finished by the owner ...
    owner.release([keys[1]])  # ... and this one given up (its model failed)
    thread.join(10)
    assert [g.text for g in out["r"]] == ["FROM OWNER", "Y"]
    assert [r.messages[-1]["content"] for r in model.calls] == ["y"]


def test_a_lone_surrogate_in_model_text_is_stored_and_read_back_the_same(tmp_path):
    """SQLite takes UTF-8 only: the generation is made valid once, so the run and its resume see one text."""

    class Surrogate(CountingModel):
        def generate(self, requests, on_done=None):
            out = [Generation("bad \ud800 text", "stop", 1, 1) for _ in requests]
            for i, g in enumerate(out):
                if on_done:
                    on_done(i, g)
            return out

    path = tmp_path / "c.sqlite"
    first = CachedGenerator(Surrogate(), Cache(path)).generate([req("q \udfff")])
    again = CachedGenerator(Surrogate(), Cache(path)).generate([req("q \udfff")])
    assert first[0].text == again[0].text == "bad \ufffd text" and again[0].cached
