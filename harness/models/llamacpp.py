"""llama-cpp-python in process: any GGUF, and the builtin models. Requests are decoded `batch` at a time in one
context (harness.models.llama_batch); `batch=1` is llama-cpp-python's own path, one request at a time."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tl_eval.harness.errors import ConfigError, ModelError
from tl_eval.harness.models.base import Generator, split_prefill
from tl_eval.harness.models.builtin import builtin_path
from tl_eval.harness.models.files import fingerprint_file
from tl_eval.harness.models.seeds import request_seed
from tl_eval.harness.models.spec import ModelSpec, float_option, int_option
from tl_eval.harness.types import Generation, GenerationRequest

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 4096
# Sequences decoded together (`?batch=N`) and llama.cpp's flash attention (`?flash_attn=0|1`): on 2 cores
# two to three times the completion tokens/s of llama-cpp-python's own sequential path, at the price of other roundings
# (a greedy output can flip at a near tie, and depends on the other requests of its batch); measured in
# docs/models.md. `batch=1&flash_attn=0` is llama-cpp-python's path exactly.
DEFAULT_BATCH = 0  # auto: as many sequences as the KV budget holds, at most MAX_AUTO_BATCH
MAX_AUTO_BATCH = 64  # on 2 cores a run of a faithfulness benchmark was 5 % faster at 64 than at 32 (docs/models.md)
DEFAULT_FLASH_ATTN = 1


def auto_batch(metadata: dict, n_ctx: int) -> int:
    """Sequences of `n_ctx` tokens whose f16 KV cache fits in an eighth of the RAM (at most 4 GiB)."""
    try:
        arch = metadata["general.architecture"]
        layers, kv_heads = int(metadata[f"{arch}.block_count"]), int(metadata[f"{arch}.attention.head_count_kv"])
        head_dim = int(metadata[f"{arch}.embedding_length"]) // int(metadata[f"{arch}.attention.head_count"])
    except (KeyError, ValueError, ZeroDivisionError):
        return 8  # an architecture without these keys: a batch that fits any model this machine can run
    per_sequence = 2 * layers * kv_heads * head_dim * 2 * n_ctx  # K and V, 2 bytes each
    budget = min(4 * 2**30, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8)
    return max(1, min(MAX_AUTO_BATCH, budget // per_sequence))


@contextlib.contextmanager
def _weights_without_amx():
    """Models loaded inside load their weights without llama.cpp's extra buffer types when the build has AMX
    kernels: these crash in the first decode on some machines (llama.cpp issue 20824; seen on this project's
    Sapphire Rapids VMs). install.sh builds without them; this covers a llama-cpp-python installed another way.
    `TL_EVAL_LLAMA_AMX=1` keeps them."""
    import llama_cpp
    import llama_cpp.llama as high_level

    amx = "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode(errors="replace")
    if not amx or os.environ.get("TL_EVAL_LLAMA_AMX") == "1":
        yield
        return
    defaults = high_level.llama_cpp.llama_model_default_params

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    high_level.llama_cpp.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        high_level.llama_cpp.llama_model_default_params = defaults


def require_llama_cpp() -> None:
    """ModelError with the install command when llama-cpp-python is missing."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelError(
            "llama-cpp-python is not installed (it runs GGUF models on the CPU)",
            "pip install 'tl-eval[cpu]' (it compiles from source in about 7 minutes)",
        )


def gguf_path(spec: ModelSpec) -> Path:
    """The GGUF file a builtin/llamacpp spec runs, verified (builtin) or checked to exist."""
    if spec.kind == "builtin":
        return builtin_path(spec.target)
    path = Path(spec.target)
    if not path.is_file():
        raise ModelError(f"GGUF file {path} does not exist", "check the path, or use builtin:qwen2.5-coder-0.5b-instruct")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelError(f"{path} is not a GGUF file (no GGUF magic)", "convert the model with llama.cpp's convert_hf_to_gguf.py")
    check_complete(path, "download or convert the model again")
    return path


def check_complete(path: Path, fix: str) -> None:
    """ModelError when a GGUF file is shorter than its header says (an interrupted download or copy).

    llama.cpp would notice only when it loads the weights, after the run has started.
    """
    from tl_eval.harness.models.gguf_file import GGUFFormatError, expected_size

    size = path.stat().st_size
    try:
        need = expected_size(path)
    except GGUFFormatError as err:
        raise ModelError(f"{path} is not a readable GGUF file ({err}; {size} bytes)", fix) from None
    if size < need:
        raise ModelError(f"{path} is truncated: {size} bytes, but its header describes {need} bytes of tensors",
                         fix)


def lora_path(spec: ModelSpec) -> Path | None:
    """The LoRA adapter GGUF named by `?lora=`, checked to exist."""
    lora = spec.options.get("lora")
    if not lora:
        return None
    path = Path(lora).expanduser()
    fix = "convert a peft adapter with llama.cpp's convert_lora_to_gguf.py and pass its .gguf file"
    if not path.is_file():
        raise ModelError(f"LoRA adapter {path} does not exist", fix)
    check_complete(path, fix)
    return path


class LlamaCppGenerator(Generator):
    """A GGUF model run by llama-cpp-python, loaded lazily once and reused; calls are serialised."""

    def __init__(self, spec: ModelSpec, n_threads: int | None = None, n_ctx: int | None = None):
        require_llama_cpp()
        self.spec = spec.raw
        self._spec = spec
        self._path = gguf_path(spec)
        self._lora = lora_path(spec)
        requested = n_ctx or int_option(spec, "n_ctx", DEFAULT_N_CTX, minimum=16)
        # llama.cpp pads the context to a multiple of 256 but llama-cpp-python sizes its token buffer with
        # the requested value, and a prompt between the two overflows it: ask for the padded size.
        self.n_ctx = -(-requested // 256) * 256
        self.n_threads = n_threads or int_option(spec, "n_threads", os.cpu_count() or 1, minimum=1)
        self._n_batch = int_option(spec, "n_batch", 512, minimum=1)
        self._n_gpu_layers = int_option(spec, "n_gpu_layers", 0)
        self._lora_scale = float_option(spec, "lora_scale", 1.0)
        self._chat_format = spec.options.get("chat_format") or None
        self.batch = int_option(spec, "batch", DEFAULT_BATCH, minimum=0)
        self._flash_attn = bool(int_option(spec, "flash_attn", DEFAULT_FLASH_ATTN))
        self._decoder = None
        self._llama = None
        self._lock = threading.Lock()  # a llama.cpp context is not thread-safe

    def fingerprint(self) -> str:
        # Content hashes, not paths: the same weights anywhere share cache entries. n_threads is left out
        # on purpose (performance only); n_ctx changes outputs through clamping of max_tokens.
        weights = fingerprint_file(self._path)
        parts = [f"llamacpp:{weights}", f"n_ctx={self.n_ctx}"]
        if self._spec.kind == "builtin":
            parts[0] = f"builtin:{self._spec.target}:{weights}"
        if self._lora is not None:
            parts.append(f"lora={fingerprint_file(self._lora)}@{self._lora_scale}")
        if self._chat_format:
            parts.append(f"chat_format={self._chat_format}")
        if self._flash_attn:
            parts.append("flash_attn")
        if self._batches():
            # Batched greedy decoding matched sequential decoding token for token where measured
            # (docs/models.md), but a different kernel path may round differently: keep the two apart.
            parts.append("decode=batched")
        return "|".join(parts)

    def kernel_facts(self) -> dict:
        import llama_cpp

        return {"backend": "llama.cpp", "llama_cpp_python": llama_cpp.__version__,
                "system_info": llama_cpp.llama_print_system_info().decode().strip(" |"),
                "n_threads": self.n_threads, "n_gpu_layers": self._n_gpu_layers}

    def sampled_fingerprint(self) -> str:
        # The batched path draws sampled tokens with its own generator, not llama.cpp's sampler chain: for the same
        # seed they differ from the sequential path's, so their cache entries are kept apart.
        return self.fingerprint() + ("|sampler=batched" if self._batches() else "")

    def _batches(self) -> bool:
        """Whether requests take the batched path: a batch above 1, the GGUF's own chat template (the
        batched path renders it itself) and no LoRA (the adapter is set on llama-cpp-python's context only)."""
        return self.batch != 1 and not self._chat_format and self._lora is None

    def _model(self):
        if self._llama is None:
            from llama_cpp import Llama

            try:
                with _weights_without_amx():
                    self._llama = Llama(
                        model_path=str(self._path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        n_batch=min(self._n_batch, self.n_ctx),
                        n_gpu_layers=self._n_gpu_layers,
                        lora_path=str(self._lora) if self._lora else None,
                        lora_scale=self._lora_scale,
                        chat_format=self._chat_format,
                        flash_attn=self._flash_attn,
                        verbose=False,
                    )
            except (ValueError, RuntimeError) as err:
                raise ModelError(f"llama.cpp cannot load {self._path}: {err}", "check that the file is a complete GGUF model") from err
        return self._llama

    def _formatter(self):
        """The GGUF's chat template as a prompt formatter (what llama-cpp-python's default handler renders)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._model()
        template = llama.metadata.get("tokenizer.chat_template")
        if self._chat_format or not template:
            raise ModelError(f"{self.spec}: an assistant prefill (--planner-format tagged) needs the GGUF's own chat "
                             "template", "drop chat_format= from the spec, or use --planner-format free")
        eos, bos = llama.token_eos(), llama.token_bos()
        text = llama._model.token_get_text
        return Jinja2ChatFormatter(template=template, eos_token=text(eos) if eos != -1 else "",
                                   bos_token=text(bos) if bos != -1 else "", stop_token_ids=[eos])

    def _one(self, request: GenerationRequest) -> Generation:
        sampling = request.sampling
        start = time.perf_counter()
        llama = self._model()
        # Forget the previous prompt: reusing its KV prefix changes the logits' rounding, and so sampled
        # tokens, making an output depend on what ran before it.
        llama.reset()
        conversation, prefill = split_prefill(request.messages)
        # top_k=0 and min_p=0 turn off llama.cpp's extra samplers: temperature and top_p mean what they
        # mean for the other backends; temperature 0 is greedy.
        params = dict(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0, min_p=0.0,
                      max_tokens=sampling.max_tokens, seed=request_seed(request))
        try:
            if prefill:
                # llama-cpp-python's chat API cannot continue an assistant turn: render the GGUF's own chat
                # template (as its chat handler does), append the prefill and complete the raw prompt.
                formatted = self._formatter()(messages=conversation)
                out = llama.create_completion(prompt=formatted.prompt + prefill,
                                              stop=list(sampling.stop) + list(formatted.stop or []),
                                              stopping_criteria=formatted.stopping_criteria, **params)
                out["choices"][0]["message"] = {"content": out["choices"][0].get("text", "")}
            else:
                out = llama.create_chat_completion(messages=conversation, stop=list(sampling.stop) or None,
                                                   **params)
        except ValueError as err:
            if "exceed context window" not in str(err):
                raise
            # One over-long prompt must not end a whole evaluation: report it as this request's error.
            log.warning("prompt longer than n_ctx=%d for %s: %s", self.n_ctx, self.spec, err)
            return Generation(text="", finish_reason="error", seconds=time.perf_counter() - start)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(
            text=choice["message"].get("content") or "",
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=time.perf_counter() - start,
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)

        def done(i: int, gen: Generation) -> None:
            results[i] = gen
            if on_done is not None:
                on_done(i, gen)

        with self._lock:
            if self._batches():  # even one request: its sampled tokens come from the batched path's sampler
                try:
                    self._generate_batched(list(enumerate(requests)), done)
                except ModelError as err:  # no chat template in the GGUF: llama-cpp-python's own formats apply
                    log.warning("%s: decoding one request at a time: %s", self.spec, err.problem)
                    self.batch = 1
            for i, request in enumerate(requests):
                if results[i] is None:
                    done(i, self._one(request))
        return results  # type: ignore[return-value]

    def _generate_batched(self, indexed: list[tuple[int, GenerationRequest]],
                          done: Callable[[int, Generation], None]) -> None:
        from tl_eval.harness.models.llama_batch import BatchDecoder, BatchItem

        llama, formatter = self._model(), self._formatter()
        items = []
        for i, request in indexed:
            conversation, prefill = split_prefill(request.messages)
            formatted = formatter(messages=conversation)
            # As llama-cpp-python's completion tokenizes a text prompt (special tokens parsed, BOS as the vocab says).
            tokens = llama.tokenize((formatted.prompt + prefill).encode("utf-8"), add_bos=True, special=True)
            if len(tokens) >= self.n_ctx:
                log.warning("prompt longer than n_ctx=%d for %s: %d tokens", self.n_ctx, self.spec, len(tokens))
                done(i, Generation(text="", finish_reason="error"))
                continue
            # llama-cpp-python clamps max_tokens to what the context has left; so does this path.
            budget = min(request.sampling.max_tokens, self.n_ctx - len(tokens))
            sampling = request.sampling
            items.append(BatchItem(i, tokens, budget, [*sampling.stop, *(formatted.stop or [])],
                                   sampling.temperature, sampling.top_p, request_seed(request)))
        if not items:
            return
        if self._decoder is None:
            n_seq = self.batch or auto_batch(llama.metadata, self.n_ctx)
            self._decoder = BatchDecoder(llama, n_seq, self.n_ctx, self.n_threads, self._n_batch)
        self._decoder.run(items, lambda i, r: done(i, Generation(
            text=r.text, finish_reason=r.finish_reason, prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens, seconds=r.seconds, prompt_tokens_computed=r.prompt_tokens_computed)))

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        if self._llama is not None:
            self._llama.close()
            self._llama = None


def check_int_options(spec: ModelSpec) -> None:
    """Validate numeric options early (preflight), so typos fail before any generation."""
    for key in ("n_ctx", "n_threads", "n_batch", "n_gpu_layers", "batch", "flash_attn"):
        int_option(spec, key, 0)
    float_option(spec, "lora_scale", 1.0)
    if spec.options.get("chat_format") == "":
        raise ConfigError(f"empty chat_format in {spec.raw!r}", "drop the option to use the GGUF's own chat template")
