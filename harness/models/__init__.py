"""Model backends behind one Generator interface; specs `KIND:TARGET[?key=value&...]` pick and configure them."""

from __future__ import annotations

import importlib.util

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models.base import Generator
from tl_eval.harness.models.builtin import list_builtin
from tl_eval.harness.models.scripted import ScriptedModel, register_scripted, scripted_names
from tl_eval.harness.models.spec import DEFAULT_FROZEN, FROZEN_ENV, ModelSpec, parse_spec, resolve_frozen
from tl_eval.harness.models.spec import canonical_text, check_options

__all__ = [
    "DEFAULT_FROZEN",
    "FROZEN_ENV",
    "Generator",
    "ModelSpec",
    "ScriptedModel",
    "list_builtin",
    "load_generator",
    "parse_spec",
    "preflight",
    "register_scripted",
    "resolve_frozen",
    "scripted_names",
]


def _as_spec(spec: ModelSpec | str, frozen: str | None = None) -> ModelSpec:
    return spec if isinstance(spec, ModelSpec) else parse_spec(spec, frozen=frozen)


def _require(module: str, what: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ModelError(f"{module} is not installed (needed by {what})", f"pip install 'tl-eval[{extra}]'")


def preflight(spec: ModelSpec | str, frozen: str | None = None) -> None:
    """Check every precondition of a spec before any generation; raise ModelError/ConfigError with the fix."""
    spec = _as_spec(spec, frozen)
    if spec.kind in ("builtin", "llamacpp"):
        from tl_eval.harness.models.llamacpp import check_int_options, gguf_path, lora_path, require_llama_cpp

        check_int_options(spec)
        require_llama_cpp()
        gguf_path(spec)  # builtin: assembles on first use and verifies the sha256
        lora_path(spec)
    elif spec.kind == "hf":
        from tl_eval.harness.models.hf import check_hf_options, require_transformers, resolve_hf

        check_hf_options(spec)
        require_transformers()
        _, adapter = resolve_hf(spec)
        if adapter is not None:
            _require("peft", "peft adapters", "train")
        if spec.options.get("gguf_file"):
            _require("gguf", "hf: models read from GGUF files", "train")
    elif spec.kind == "openai":
        from tl_eval.harness.models.openai_backend import preflight_openai

        preflight_openai(spec)
    elif spec.kind == "vllm":
        from tl_eval.harness.models.vllm_backend import preflight_vllm

        preflight_vllm(spec)
    elif spec.kind == "scripted":
        from tl_eval.harness.models.scripted import _model_class

        _model_class(spec)
    else:  # parse_spec never returns another kind
        raise ModelError(f"no backend for kind {spec.kind!r}", None)


def load_generator(spec: ModelSpec | str, frozen: str | None = None, **overrides) -> Generator:
    """Build the Generator for a spec; `overrides` (e.g. n_threads=2, concurrency=8) are merged into its options."""
    spec = _as_spec(spec, frozen)
    extra = {k: str(v) for k, v in overrides.items() if v is not None}
    if extra:
        options = {**spec.options, **extra}
        check_options(spec.kind, options, spec.raw)
        spec = ModelSpec(spec.kind, spec.target, options, canonical_text(spec.kind, spec.target, options))
    if spec.kind in ("builtin", "llamacpp"):
        from tl_eval.harness.models.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(spec)
    if spec.kind == "hf":
        from tl_eval.harness.models.hf import HFGenerator

        return HFGenerator(spec)
    if spec.kind == "openai":
        from tl_eval.harness.models.openai_backend import OpenAIGenerator

        return OpenAIGenerator(spec)
    if spec.kind == "vllm":
        from tl_eval.harness.models.vllm_backend import VLLMGenerator

        return VLLMGenerator(spec)
    if spec.kind == "scripted":
        from tl_eval.harness.models.scripted import ScriptedGenerator

        return ScriptedGenerator(spec)
    raise ModelError(f"no backend for kind {spec.kind!r}", None)
