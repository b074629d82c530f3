"""Hugging Face transformers: a checkpoint directory or hub id, peft adapters, batched generation with left padding."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tl_eval.harness.errors import ConfigError, ModelError
from tl_eval.harness.models.base import Generator, split_prefill
from tl_eval.harness.models.files import fingerprint_file
from tl_eval.harness.models.seeds import request_seed
from tl_eval.harness.models.spec import ModelSpec, int_option
from tl_eval.harness.pipeline.trace import cut_at_stops
from tl_eval.harness.types import Generation, GenerationRequest

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
_DTYPES = ("auto", "float32", "bfloat16", "float16")


def chat_prompt(tokenizer, messages) -> str:
    """The prompt text a transformers model is given for a conversation: the chat template with a new assistant
    turn, then the prefill if the conversation ends with one. The trainer's planner prompts are this same text."""
    conversation, prefill = split_prefill(messages)
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) + prefill


def require_transformers() -> None:
    """ModelError with the install command when torch/transformers/peft are missing."""
    import importlib.util

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelError(f"{' and '.join(missing)} not installed (needed by hf: models)", "pip install 'tl-eval[train]'")


def _adapter_base(adapter_dir: Path, override: str | None) -> str:
    if override:
        return override
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelError(
            f"{adapter_dir / 'adapter_config.json'} names no base_model_name_or_path",
            f"say which base to load: hf:{adapter_dir}?base=PATH_OR_ID",
        )
    # A relative base path is taken relative to the adapter when it exists there (moved run folders).
    candidate = (adapter_dir / base).resolve()
    return str(candidate) if not Path(base).is_absolute() and candidate.exists() else base


def resolve_hf(spec: ModelSpec) -> tuple[str, Path | None]:
    """(base model path or id, adapter directory or None) for an hf spec; ModelError when a local path is broken."""
    target = Path(spec.target).expanduser()
    looks_local = target.exists() or spec.target.startswith((".", "/", "~")) or spec.target.count("/") > 1
    if not looks_local:
        return spec.target, None  # a hub id
    if not target.is_dir():
        raise ModelError(f"model directory {target} does not exist", "check the path (a checkpoint folder with config.json)")
    if (target / "adapter_config.json").is_file():
        base = _adapter_base(target, spec.options.get("base"))
        if Path(base).is_absolute() and not Path(base).exists():
            raise ModelError(
                f"the adapter in {target} names base model {base}, which does not exist",
                f"point at the base explicitly: hf:{target}?base=PATH_OR_ID",
            )
        return base, target
    gguf = spec.options.get("gguf_file")
    if gguf and not (target / gguf).is_file():
        raise ModelError(f"{target / gguf} does not exist", "gguf_file names a file inside the model directory")
    if not gguf and not (target / "config.json").is_file():
        raise ModelError(f"{target} has no config.json", "point at a Hugging Face checkpoint folder, or add ?gguf_file=NAME.gguf")
    return str(target), None


def _dir_digest(folder: Path) -> str:
    # Small files by content, weights by their remembered sha256: a retrained checkpoint changes the digest.
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.suffix in _WEIGHT_SUFFIXES:
            digest.update(f"{path.name}:{fingerprint_file(path)}".encode())
        elif path.stat().st_size < (1 << 24):
            digest.update(path.name.encode() + b":" + path.read_bytes())
    return digest.hexdigest()[:16]


def check_hf_options(spec: ModelSpec) -> None:
    """Validate options early (preflight)."""
    int_option(spec, "batch_size", 8, minimum=1)
    dtype = spec.options.get("dtype", "auto")
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype={dtype!r} in {spec.raw!r} is not supported", f"use one of: {', '.join(_DTYPES)}")


class HFGenerator(Generator):
    """A causal LM from transformers (+ peft adapter), loaded lazily once; requests batched by sampling settings."""

    def __init__(self, spec: ModelSpec, device: str | None = None, batch_size: int | None = None):
        require_transformers()
        check_hf_options(spec)
        self.spec = spec.raw
        self._spec = spec
        self.base, self.adapter = resolve_hf(spec)
        self.batch_size = batch_size or int_option(spec, "batch_size", 8, minimum=1)
        self._device = device or spec.options.get("device")
        self._dtype = spec.options.get("dtype", "auto")
        self._gguf = spec.options.get("gguf_file") if self.adapter is None else None
        self._model = None
        self._tokenizer = None
        self._eos: list[int] = []
        self._lock = threading.Lock()

    def fingerprint(self) -> str:
        def ident(ref: str) -> str:
            path = Path(ref)
            if path.is_dir():
                return f"dir:{_dir_digest(path)}"
            return f"hub:{ref}@{self._spec.options.get('revision', 'main')}"

        parts = [f"hf:{ident(self.base)}"]
        if self._gguf:
            parts.append(f"gguf={fingerprint_file(Path(self.base) / self._gguf)}")
        if self.adapter is not None:
            parts.append(f"adapter={_dir_digest(self.adapter)}")
        parts.append(f"dtype={self._resolved_dtype_name()}")
        return "|".join(parts)

    def kernel_facts(self) -> dict:
        import torch

        return {"backend": "transformers", "torch": torch.__version__, "device": self._resolved_device(),
                "dtype": self._resolved_dtype_name(), "n_threads": torch.get_num_threads()}

    def _resolved_device(self) -> str:
        import torch

        return self._device or ("cuda" if torch.cuda.is_available() else "cpu")

    def _resolved_dtype_name(self) -> str:
        if self._dtype != "auto":
            return self._dtype
        return "bfloat16" if self._resolved_device().startswith("cuda") else "float32"

    def _load(self):
        if self._model is not None:
            return self._model, self._tokenizer
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {}
        if self._gguf:
            kwargs["gguf_file"] = self._gguf
        if "revision" in self._spec.options:
            kwargs["revision"] = self._spec.options["revision"]
        tok_source = self.base
        if self.adapter is not None and any((self.adapter / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
            tok_source = str(self.adapter)  # the trainer saves the tokenizer (and its chat template) with the adapter
        try:
            tokenizer = AutoTokenizer.from_pretrained(tok_source, **(kwargs if tok_source == self.base else {}))
            model = AutoModelForCausalLM.from_pretrained(self.base, dtype=getattr(torch, self._resolved_dtype_name()), **kwargs)
        except (OSError, ValueError) as err:
            raise ModelError(f"transformers cannot load {self.base}: {err}", "check the path or hub id (and network access for hub ids)") from err
        if self.adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(self.adapter)).merge_and_unload()
        if getattr(model, "hf_quantizer", None) is not None:
            # GGUF weights load dequantized, but transformers still marks the model quantized.
            model.hf_quantizer.remove_quantization_config(model)
        if not tokenizer.chat_template:
            raise ModelError(f"the tokenizer of {tok_source} has no chat template", "use an instruct model, or save one with tokenizer.chat_template")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = {tokenizer.eos_token_id}
        configured = getattr(model.generation_config, "eos_token_id", None)
        eos.update(configured if isinstance(configured, list) else [configured])
        # ChatML templates end each turn with <|im_end|>, which some tokenizers (e.g. GGUF-converted) do not mark as eos.
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if "<|im_end|>" in tokenizer.chat_template and isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
            eos.add(im_end)
        self._eos = sorted(e for e in eos if e is not None)
        self._model = model.to(self._resolved_device()).eval()
        self._tokenizer = tokenizer
        return self._model, self._tokenizer

    def _batch(self, batch: list[GenerationRequest]) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        model, tokenizer = self._load()
        sampling = batch[0].sampling
        start = time.perf_counter()
        texts = [chat_prompt(tokenizer, r.messages) for r in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        sample = sampling.temperature > 0
        # Our own config, not the checkpoint's defaults (top_k, repetition_penalty...): the same settings mean
        # the same thing on every backend.
        config = GenerationConfig(
            max_new_tokens=sampling.max_tokens,
            do_sample=sample,
            temperature=sampling.temperature if sample else None,
            top_p=sampling.top_p if sample else None,
            top_k=0 if sample else None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=self._eos,
            stop_strings=list(sampling.stop) or None,
        )
        if sample:
            # One seed per batch: sampled outputs depend on how requests were batched (greedy ones do not).
            torch.manual_seed(request_seed(batch[0]))
        with torch.inference_mode():
            out = model.generate(**enc, generation_config=config, tokenizer=tokenizer)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        seconds = (time.perf_counter() - start) / len(batch)
        results = []
        for row, mask in zip(new, enc["attention_mask"].sum(dim=1).tolist()):
            cut = next((k for k, t in enumerate(row) if t in self._eos), None)
            tokens = row if cut is None else row[:cut]
            tokens = [t for t in tokens if t != tokenizer.pad_token_id]
            text, stopped = cut_at_stops(tokenizer.decode(tokens, skip_special_tokens=True), sampling.stop)
            length = cut is None and not stopped and len(tokens) >= sampling.max_tokens
            results.append(
                Generation(
                    text=text,
                    finish_reason="length" if length else "stop",
                    prompt_tokens=int(mask),
                    completion_tokens=len(tokens),
                    seconds=seconds,
                )
            )
        return results

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            s = r.sampling
            # Greedy requests batch together whatever their seed; sampled ones only with the same seed settings.
            key = (s.temperature, s.top_p, s.max_tokens, s.stop) + ((s.seed,) if s.temperature > 0 else ())
            groups.setdefault(key, []).append(i)
        with self._lock:
            for indices in groups.values():
                for lo in range(0, len(indices), self.batch_size):
                    chunk = indices[lo:lo + self.batch_size]
                    for i, gen in zip(chunk, self._batch([requests[i] for i in chunk])):
                        results[i] = gen
                        if on_done is not None:
                            on_done(i, gen)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
