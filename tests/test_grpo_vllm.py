"""GRPO generating through vLLM's CPU build, in both of TRL's modes: the engine colocated in the trainer's process,
and `tl-eval vllm-serve` (the server `trl vllm-serve` starts) on the loopback.

The planner is the builtin SmolLM2-135M (vLLM's CPU attention has no kernel for the tiny random model's head
size); the executor is scripted, trace-dependent, so that completions of one prompt get different rewards and
every step with reward variance moves the weights. Whether the weights reach vLLM is read from TRL's own
`sampling/sampling_logp_difference`: the mean gap between the log-probabilities vLLM sampled each token with and
the trainer's model's (float32 here, bfloat16 in vLLM). Measured with these settings: synced, 0.017-0.034
(colocate) and 0.027-0.053 (server) at every step; with the sync removed, 0.40 and 0.55 in the two steps after the
first update (docs/training.md#vllm)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tl_eval.harness.models import register_scripted
from tl_eval.harness.models.vllm_backend import vllm_build
from tl_eval.training.grpo import load_train_config, train
from tests.servers import free_port, wait_until_serving

pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(vllm_build() != "cpu", reason="needs vLLM's CPU build (bash install.sh vllm)")]

STEPS = 3  # the first update is at step 2 (the same samples every run: vLLM seeds each request)
GAP_BOUND = 0.15  # synced: at most 0.053 (server), 0.034 (colocate); unsynced: 0.40 and 0.55 after the first update


def _executor(messages):
    text = messages[-1]["content"]
    if "Provided reasoning" not in text:
        return "\\boxed{0}"
    return "\\boxed{72}" if hashlib.sha256(text.encode()).digest()[0] % 2 else "\\boxed{5}"  # 72: problem 0's gold


def _train(tmp_path, mode: str, trl: dict):
    register_scripted("test-grpo-vllm-exec", _executor)
    cfg = load_train_config(None, mode="exec-only", task="gsm8k", planner="builtin:smollm2-135m-instruct",
                            executor="scripted:test-grpo-vllm-exec", output=str(tmp_path / mode), limit=2,
                            max_steps=STEPS, max_completion_length=16, save_steps=100, cache="off", k=1,
                            learning_rate=5e-3, use_vllm=True, vllm_mode=mode, trl=trl)
    result = train(cfg, show_progress=False)
    assert result.steps == STEPS
    return [json.loads(line) for line in result.metrics_path.read_text().splitlines()]


def _assert_generation_follows_the_weights(lines: list[dict]) -> None:
    assert [m["step"] for m in lines] == list(range(1, STEPS + 1))
    moved = [m for m in lines if m["grad_norm"] > 0]
    assert moved and moved[0]["step"] < STEPS, "no step changed the weights before the last: nothing was tested"
    after = [m["sampling/sampling_logp_difference/mean"] for m in lines if m["step"] > moved[0]["step"]]
    assert max(after) < GAP_BOUND, after
    assert all("rewards/exec_only/mean" in m and "executor/calls" in m for m in lines)


def test_colocated_engine_generates_with_the_updated_weights(tmp_path, data_dir):
    lines = _train(tmp_path, "colocate", {"vllm_gpu_memory_utilization": 0.1, "vllm_max_model_length": 1024})
    _assert_generation_follows_the_weights(lines)


def test_server_generates_with_the_updated_weights(tmp_path, data_dir):
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: the start-up log would fill a pipe and block
        proc = subprocess.Popen(
            [sys.executable, "-m", "tl_eval.harness.cli", "vllm-serve", "smollm2-135m-instruct", "--port", str(port),
             "--enforce-eager", "--max-model-len", "1024", "--kv-cache-memory-bytes", str(1 << 30)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_LOGGING_LEVEL": "WARNING"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, f"{url}/v1", log_path, 400, "tl-eval vllm-serve")
        lines = _train(tmp_path, "server", {"vllm_server_base_url": url})
    finally:
        proc.kill()
        proc.wait(30)
    _assert_generation_follows_the_weights(lines)
