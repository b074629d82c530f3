"""The server command `tl-eval vllm-serve` starts: TRL's own command line, startable on vLLM's CPU build."""

import pytest

pytest.importorskip("trl")

from tl_eval.training.grpo import vllm_sync  # noqa: E402


@pytest.mark.parametrize("build", ["cpu", "gpu"])
def test_serve_command_is_trls_with_the_cpu_builds_entry_point(monkeypatch, build):
    monkeypatch.setattr("tl_eval.harness.models.vllm_backend.vllm_build", lambda: build)
    argv, env = vllm_sync.serve_command("/models/m", 8011, extra=["--enforce-eager"])
    assert env == {"VLLM_SERVER_DEV_MODE": "1"}  # TRL's weight and prefix-cache endpoints
    assert argv[argv.index("--port") + 1] == "8011" and argv[-1] == "--enforce-eager"
    assert "--weight-transfer-config" in argv and "processed_logprobs" in argv
    if build == "cpu":
        assert argv[1:5] == ["-m", "vllm.entrypoints.openai.api_server", "--model", "/models/m"]
        assert "--gpu-memory-utilization" not in argv  # a share of host RAM there: the KV cache is sized instead
    else:
        assert argv[1:5] == ["-m", "vllm.entrypoints.cli.main", "serve", "/models/m"]


def test_adapt_leaves_trls_paths_alone_without_the_cpu_build(monkeypatch):
    class Generation:
        mode = "colocate"

        def sync_weights(self):
            return "trl"

    class Trainer:
        vllm_generation = Generation()

    class Cfg:
        use_vllm, vllm_mode = True, "colocate"

    monkeypatch.setattr("tl_eval.harness.models.vllm_backend.vllm_build", lambda: "gpu")
    trainer = Trainer()
    vllm_sync.adapt(trainer, Cfg())
    assert trainer.vllm_generation.sync_weights() == "trl"
    monkeypatch.setattr("tl_eval.harness.models.vllm_backend.vllm_build", lambda: "cpu")
    vllm_sync.adapt(trainer, Cfg())
    assert trainer.vllm_generation.sync_weights.__name__ == "sync_weights"
    assert trainer.vllm_generation.sync_weights.__qualname__.startswith("reload_in_place")
