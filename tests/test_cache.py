"""The generation cache: keys, persistence across processes, dedup, and what is never cached."""

import sqlite3

from harness.models.base import Generator
from harness.pipeline.cache import Cache, CachedGenerator, generation_key
from harness.types import Generation, GenerationRequest, SamplingParams, Verdict


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
