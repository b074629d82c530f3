"""The openai backend against two real llama-cpp-python servers running the builtin SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys

import pytest

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models import load_generator, preflight
from tl_eval.harness.models.builtin import builtin_path
from tl_eval.harness.types import GenerationRequest, SamplingParams
from tests.servers import wait_until_serving

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette")),
    reason="needs llama-cpp-python[server]",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dead_url() -> str:
    return f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two llama.cpp servers on free ports, stopped after the module. One thread each, for prompts too: on a
    shared CPU, threads that spin waiting for each other made the module 5x slower."""
    model = builtin_path("smollm2-135m-instruct")
    logs = tmp_path_factory.mktemp("servers")
    procs, urls = [], []
    try:
        for k in range(2):
            port = _free_port()
            # Logs go to a file: llama.cpp writes ~200 kB at load, enough to fill and block a pipe.
            with open(logs / f"server{k}.log", "wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                     "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "512"],
                    stdout=log, stderr=subprocess.STDOUT,
                ))
            urls.append(f"http://127.0.0.1:{port}/v1")
        for k, (proc, url) in enumerate(zip(procs, urls)):
            wait_until_serving(proc, url, logs / f"server{k}.log", 180, "llama_cpp.server")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ask(text: str, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), sampling=SamplingParams(**sampling))


PROMPTS = ["What is 2+2? Answer briefly.", "Name one color.", "Say hello in French.", "What is the capital of Italy?"]


def test_preflight_live_partly_dead_and_dead(servers, caplog):
    preflight(f"openai:smollm2@{servers[0]},{servers[1]}")
    dead = _dead_url()
    preflight(f"openai:smollm2@{dead}|{servers[0]}")
    assert dead in caplog.text  # warned about, not fatal while another URL answers
    with pytest.raises(ModelError) as info:
        preflight(f"openai:smollm2@{dead}")
    assert f"cannot reach {dead}" in info.value.problem
    assert "is the server running?" in info.value.fix and "llama_cpp.server" in info.value.fix


def test_two_urls_share_the_work_and_keep_request_order(servers):
    reqs = [_ask(p, max_tokens=12) for p in PROMPTS]
    done = []
    with load_generator(f"openai:smollm2@{servers[0]},{servers[1]}?concurrency=2") as both:
        out = both.generate(reqs, on_done=lambda i, g: done.append(i))
        assert all(n > 0 for n in both.served.values()), both.served
    with load_generator(f"openai:smollm2@{servers[1]}?concurrency=1") as one:
        reference = one.generate(reqs)
    assert sorted(done) == [0, 1, 2, 3]
    # Greedy answers are the same whichever server gave them, so order mix-ups would show here.
    assert [g.text for g in out] == [g.text for g in reference]
    assert len({g.text for g in out}) > 1
    assert all(g.prompt_tokens > 0 and g.completion_tokens > 0 for g in out)


def test_length_finish_and_failover_from_a_dead_url(servers):
    with load_generator(f"openai:smollm2@{_dead_url()},{servers[0]}?retries=4") as gen:
        out = gen.generate([_ask("Count from one to twenty.", max_tokens=3), _ask("Hi", max_tokens=3)])
    assert [g.finish_reason for g in out] == ["length", "length"]
    assert [g.completion_tokens for g in out] == [3, 3]


def test_no_server_at_generate_time_is_a_model_error():
    with load_generator(f"openai:smollm2@{_dead_url()}?retries=1&timeout=5") as gen:
        with pytest.raises(ModelError, match="after 2 attempts"):
            gen.generate([_ask("Hi", max_tokens=2)])


def test_fingerprint_is_the_model_name_not_the_urls():
    a = load_generator("openai:qwen@http://10.0.0.1:8000/v1").fingerprint()
    assert a == load_generator("openai:qwen@http://10.0.0.2:8000/v1,http://10.0.0.3:8000/v1").fingerprint()
    assert a != load_generator("openai:other@http://10.0.0.1:8000/v1").fingerprint()


def test_prefill_and_stop_reach_the_server(servers):
    # llama_cpp.server ignores continue_final_message (a documented fallback): the request still goes through
    # with the stop sequence, and a reply that re-opens the tag is not counted twice.
    prefilled = GenerationRequest(
        messages=({"role": "user", "content": "Plan how to add two numbers."},
                  {"role": "assistant", "content": "<reasoning>\n"}),
        sampling=SamplingParams(max_tokens=24, stop=("</reasoning>", "numbers")))
    with load_generator(f"openai:smollm2@{servers[0]}") as gen:
        out = gen.generate([prefilled])[0]
    assert not out.text.startswith("<reasoning>") and "</reasoning>" not in out.text
    assert "numbers" not in out.text and out.completion_tokens > 0
