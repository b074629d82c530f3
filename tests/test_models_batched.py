"""The llama.cpp backend's batched greedy path (`?batch=N`) on the tiny builtin model: what it returns per request,
its stops and limits, its slots, and how its outputs relate to the sequential path's."""

from __future__ import annotations

import pytest

from tl_eval.harness.models import load_generator
from tl_eval.harness.types import GenerationRequest, SamplingParams

pytest.importorskip("llama_cpp")
SMOL = "builtin:smollm2-135m-instruct?n_threads=1&n_ctx=512"
PROMPTS = ["Count from one to ten in words.", "Name three colours.", "What is 2 + 2? Explain.",
           "Write a haiku about rain.", "List the days of the week.", "Say hello in French."]


def _req(text: str, max_tokens: int = 40, stop: tuple[str, ...] = (), temperature: float = 0.0):
    return GenerationRequest(({"role": "user", "content": text},), SamplingParams(temperature, 1.0, max_tokens, 7, stop), 0)


@pytest.fixture(scope="module")
def batched():
    with load_generator(f"{SMOL}&batch=4") as gen:
        yield gen


def test_a_request_alone_in_the_batch_is_the_sequential_output(batched):
    with load_generator(SMOL) as seq:
        for text in PROMPTS[:2]:
            one, = seq.generate([_req(text)])
            got = []
            batched._generate_batched([(0, _req(text))], lambda i, g: got.append(g))
            assert (got[0].text, got[0].finish_reason, got[0].completion_tokens) == \
                   (one.text, one.finish_reason, one.completion_tokens)


def test_more_requests_than_slots_all_finish_in_order(batched):
    done = []
    outs = batched.generate([_req(t) for t in PROMPTS], on_done=lambda i, g: done.append(i))
    assert sorted(done) == list(range(len(PROMPTS)))
    assert all(o.text and o.finish_reason in ("stop", "length") and o.prompt_tokens > 0 for o in outs)
    assert all(o.completion_tokens <= 40 for o in outs)


def test_a_shared_prefix_is_computed_once(batched):
    context = "Here is a long story about a cat who lived in a small town by the sea and liked fish. " * 3
    questions = ["What did the cat like?", "Where did the cat live?", "Who is the story about?"]
    reqs = [_req(context + q, max_tokens=12) for q in questions]
    outs = batched.generate(reqs)
    first, *later = outs
    assert first.prompt_tokens_computed == first.prompt_tokens  # nothing to reuse at the start of a call
    assert all(o.prompt_tokens_computed < o.prompt_tokens - 40 for o in later)  # the context came from the cache
    alone = [batched.generate([r])[0] for r in reqs]  # each alone: sequential, prefilled from scratch
    assert [o.text for o in outs] == [a.text for a in alone]


def test_limits_and_stop_strings(batched):
    short, cut = batched.generate([_req(PROMPTS[0], max_tokens=5), _req(PROMPTS[4], stop=("Tuesday",))])
    assert short.finish_reason == "length" and short.completion_tokens == 5
    assert "Tuesday" not in cut.text and cut.finish_reason in ("stop", "length")


def test_sampled_requests_stay_sequential_and_are_reproducible(batched):
    a = batched.generate([_req(PROMPTS[3], temperature=0.8), _req(PROMPTS[1])])
    b = batched.generate([_req(PROMPTS[3], temperature=0.8), _req(PROMPTS[2])])
    assert a[0].text == b[0].text  # the sequential path with its seed, whatever else was in the call


def test_the_cache_key_says_batched():
    plain, batched = load_generator(f"{SMOL}&batch=1&flash_attn=0"), load_generator(f"{SMOL}&batch=4")
    assert "decode=batched" in batched.fingerprint() and "decode=batched" not in plain.fingerprint()
    assert "flash_attn" in batched.fingerprint() and "flash_attn" not in plain.fingerprint()  # the defaults
    assert load_generator(SMOL).fingerprint() == load_generator(f"{SMOL}&batch=0&flash_attn=1").fingerprint()
