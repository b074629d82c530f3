"""The llama.cpp backend's batched path (`?batch=N`) on the tiny builtin model: what it returns per request,
its stops and limits, its slots, its sampler, and how its outputs relate to the sequential path's."""

from __future__ import annotations

import numpy as np
import pytest

from tl_eval.harness.models import load_generator
from tl_eval.harness.models.llama_batch import sample_token
from tl_eval.harness.models.llamacpp import MAX_AUTO_BATCH, auto_batch
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


def test_running_sequences_are_moved_to_consecutive_slots(batched, monkeypatch):
    """Once nothing waits, finished slots leave gaps; llama.cpp would decode each run of consecutive sequence ids in
    a pass of its own, so the running sequences move down (their caches copied) and go on where they were."""
    batched.generate([_req(PROMPTS[0], max_tokens=1)])  # the decoder exists once a call has run
    decoder, calls = batched._decoder, []
    real = decoder._compact
    monkeypatch.setattr(decoder, "_compact", lambda slots: (real(slots), calls.append(sorted(slots))))
    reqs = [_req(PROMPTS[0], max_tokens=2), _req(PROMPTS[1], max_tokens=2), _req(PROMPTS[2], max_tokens=30),
            _req(PROMPTS[3], max_tokens=30)]
    outs = batched.generate(reqs)
    assert [0, 1] in calls  # the two long requests, first in slots 2 and 3, run on in slots 0 and 1
    alone = [batched.generate([r])[0] for r in reqs[2:]]
    assert [o.text for o in outs[2:]] == [a.text for a in alone] and all(o.completion_tokens == 30 for o in alone)


def test_the_automatic_batch_fits_its_kv_cache_in_an_eighth_of_the_ram(monkeypatch):
    meta = {"general.architecture": "qwen2", "qwen2.block_count": 24, "qwen2.attention.head_count_kv": 2,
            "qwen2.embedding_length": 896, "qwen2.attention.head_count": 14}
    per_sequence = 2 * 24 * 2 * 64 * 2 * 4096  # K and V, f16, 4096 tokens

    def ram(gib):
        monkeypatch.setattr("os.sysconf", {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": gib * 2**30 // 4096}.get)

    ram(16)
    assert auto_batch(meta, 4096) == 2 * 2**30 // per_sequence == 42
    ram(256)  # 4 GiB at most, and at most MAX_AUTO_BATCH sequences
    assert auto_batch(meta, 4096) == MAX_AUTO_BATCH
    ram(1)
    assert auto_batch(meta, 32768) == 1
    assert auto_batch({"general.architecture": "unknown"}, 4096) == 8


def test_limits_and_stop_strings(batched):
    short, cut = batched.generate([_req(PROMPTS[0], max_tokens=5), _req(PROMPTS[4], stop=("Tuesday",))])
    assert short.finish_reason == "length" and short.completion_tokens == 5
    assert "Tuesday" not in cut.text and cut.finish_reason in ("stop", "length")


def test_sampled_requests_are_batched_seeded_and_reproducible(batched):
    sampled = [_req(PROMPTS[3], temperature=0.8)] + [
        GenerationRequest(_req(PROMPTS[3]).messages, SamplingParams(0.8, 1.0, 40, 7), i) for i in (1, 2, 3)]
    a = batched.generate([*sampled, _req(PROMPTS[1])])
    b = batched.generate([*sampled, _req(PROMPTS[1])])
    assert [o.text for o in a] == [o.text for o in b]  # each request's own seeded generator
    assert len({o.text for o in a[:4]}) > 1  # the samples of one prompt differ (seed + sample index)
    greedy = batched.generate([_req(PROMPTS[3])])[0].text
    assert any(o.text != greedy for o in a[:4])


def test_sample_token_draws_from_the_tempered_softmax():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    rng = np.random.default_rng(0)
    draws = np.bincount([sample_token(logits, 1.0, 1.0, rng) for _ in range(4000)], minlength=4) / 4000
    assert np.allclose(draws, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    cold = np.bincount([sample_token(logits, 0.25, 1.0, rng) for _ in range(2000)], minlength=4) / 2000
    assert cold[0] > 0.85  # a low temperature sharpens the distribution
    again = [sample_token(logits, 1.0, 1.0, np.random.default_rng(5)) for _ in range(3)]
    assert len(set(again)) == 1  # the same seed, the same draw


@pytest.mark.parametrize("vocab", [4, 1000])  # within the first candidates, and a flat tail beyond them
def test_sample_token_keeps_to_the_nucleus(vocab):
    probs = np.full(vocab, 0.2 / (vocab - 2))
    probs[:2] = [0.5, 0.3]
    rng = np.random.default_rng(1)
    drawn = {sample_token(np.log(probs), 1.0, 0.75, rng) for _ in range(500)}
    assert drawn == {0, 1}  # the smallest set of mass >= 0.75
    flat = np.zeros(vocab, dtype=np.float32)
    assert len({sample_token(flat, 1.0, 0.9, rng) for _ in range(300)}) > min(vocab // 2, 100)


def test_the_cache_key_says_batched():
    plain, batched = load_generator(f"{SMOL}&batch=1&flash_attn=0"), load_generator(f"{SMOL}&batch=4")
    assert "decode=batched" in batched.fingerprint() and "decode=batched" not in plain.fingerprint()
    assert "flash_attn" in batched.fingerprint() and "flash_attn" not in plain.fingerprint()  # the defaults
    assert load_generator(SMOL).fingerprint() == load_generator(f"{SMOL}&batch=0&flash_attn=1").fingerprint()
    # sampled tokens come from another sampler on the batched path: their cache entries are apart
    assert batched.sampled_fingerprint() == batched.fingerprint() + "|sampler=batched"
    assert plain.sampled_fingerprint() == plain.fingerprint()
