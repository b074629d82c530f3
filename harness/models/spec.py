"""Parse model specs `KIND:TARGET[?key=value&...]`, with bare-path auto-detection and the `frozen` alias."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from tl_eval.harness.config import DEFAULT_FROZEN
from tl_eval.harness.errors import ConfigError
FROZEN_ENV = "TL_EVAL_FROZEN_EXECUTOR"

BUILTIN_NAMES = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct")

_LLAMACPP_OPTIONS = ("n_ctx", "n_threads", "n_batch", "n_gpu_layers", "lora", "lora_scale", "chat_format", "batch",
                     "flash_attn")

# Options each kind accepts; `None` means free-form (scripted models read their own).
KIND_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "builtin": _LLAMACPP_OPTIONS,
    "llamacpp": _LLAMACPP_OPTIONS,
    "hf": ("device", "dtype", "batch_size", "gguf_file", "revision", "base"),
    "openai": ("concurrency", "timeout", "retries", "down_timeout", "api_key_env"),
    "vllm": (
        "tensor_parallel_size",
        "data_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "dtype",
        "revision",
        "lora",
        "chunk",
        "enforce_eager",
        "max_num_seqs",
        "kv_cache_gb",
    ),
    "scripted": None,
}
KINDS = tuple(KIND_OPTIONS) + ("frozen",)

_KIND_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):(?!//)")
_SPEC_HELP = (
    "write KIND:TARGET with KIND one of builtin, llamacpp, hf, openai, vllm, scripted, frozen "
    "(e.g. builtin:qwen2.5-coder-0.5b-instruct, llamacpp:/path/model.gguf, hf:/path/checkpoint, "
    "openai:MODEL@http://127.0.0.1:8000/v1), or give a path to a .gguf file or a model directory"
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. `raw` is the canonical text (the resolved one for `frozen`)."""

    kind: str
    target: str
    options: dict[str, str] = field(default_factory=dict, hash=False)
    raw: str = ""

    def __str__(self) -> str:
        return self.raw


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _split_options(text: str) -> tuple[str, dict[str, str]]:
    head, sep, query = text.partition("?")
    if not sep:
        return text, {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ConfigError(
            f"malformed options {query!r} in model spec {text!r}",
            "write options as ?key=value&key2=value2",
        ) from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options:
            raise ConfigError(f"option {key!r} given twice in model spec {text!r}", "give each option once")
        options[key] = value
    return head, options


def check_options(kind: str, options: dict[str, str], text: str) -> None:
    allowed = KIND_OPTIONS.get(kind)
    if allowed is None:
        return
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"unknown option {key!r} for a {kind} model in {text!r}{_did_you_mean(key, allowed)}",
                f"{kind} models accept: {', '.join(allowed)}",
            )


def _detect_path_kind(head: str) -> str | None:
    path = Path(head).expanduser()
    if head.endswith(".gguf") and not path.is_dir():
        return "llamacpp"
    if path.is_dir() and ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
        return "hf"
    return None


def canonical_text(kind: str, target: str, options: dict[str, str]) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{kind}:{target}" + (f"?{query}" if query else "")


def resolve_frozen(frozen: str | None = None) -> str:
    """The frozen executor's spec text: the argument, else $TL_EVAL_FROZEN_EXECUTOR, else the builtin Qwen coder."""
    return frozen or os.environ.get(FROZEN_ENV) or DEFAULT_FROZEN


def parse_spec(text: str, frozen: str | None = None) -> ModelSpec:
    """Parse a model spec; raise ConfigError naming the mistake and a fix."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("empty model spec", _SPEC_HELP)
    text = text.strip()
    head, options = _split_options(text)

    if head == "frozen" or head == "frozen:":
        resolved = resolve_frozen(frozen)
        if resolved.split("?")[0].rstrip(":") == "frozen":
            raise ConfigError(
                "the frozen executor is configured as 'frozen' itself",
                f"set {FROZEN_ENV} (or the frozen argument) to a concrete spec such as {DEFAULT_FROZEN}",
            )
        spec = parse_spec(resolved)
        if options:
            merged = {**spec.options, **options}
            check_options(spec.kind, merged, text)
            spec = ModelSpec(spec.kind, spec.target, merged, canonical_text(spec.kind, spec.target, merged))
        return spec

    match = _KIND_RE.match(head)
    if match is None or (match.group(1) not in KINDS and _detect_path_kind(head)):
        kind = _detect_path_kind(head)
        if kind is None:
            hint = ""
            if head.lower() in BUILTIN_NAMES:
                hint = f" (did you mean 'builtin:{head.lower()}'?)"
            elif re.match(r"^https?://", head):
                hint = f" (did you mean 'openai:MODEL@{head}'?)"
            elif Path(head).expanduser().exists():
                hint = " (the path exists but is neither a .gguf file nor a directory with config.json)"
            raise ConfigError(f"cannot tell which backend runs model spec {text!r}{hint}", _SPEC_HELP)
        target = str(Path(head).expanduser())
        check_options(kind, options, text)
        return ModelSpec(kind, target, options, canonical_text(kind, target, options))

    kind, target = match.group(1).lower(), head[match.end():]
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, list(KINDS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0] + ':' + text[match.end():]!r}?)" if close else ""
        raise ConfigError(f"unknown model kind {match.group(1)!r} in {text!r}{hint}", _SPEC_HELP)
    if not target:
        raise ConfigError(f"model spec {text!r} has no target after {kind!r}:", _target_help(kind))
    check_options(kind, options, text)
    if kind == "builtin":
        target = target.lower()
        if target not in BUILTIN_NAMES:
            raise ConfigError(
                f"unknown builtin model {target!r}{_did_you_mean(target, BUILTIN_NAMES)}",
                f"builtin models: {', '.join(BUILTIN_NAMES)} (list them with `tl-eval models`)",
            )
    elif kind == "llamacpp":
        target = str(Path(target).expanduser())
    elif kind == "openai":
        openai_endpoint(ModelSpec(kind, target, options, text))  # validate now, not at load time
    return ModelSpec(kind, target, options, canonical_text(kind, target, options))


def _target_help(kind: str) -> str:
    return {
        "builtin": f"name one of: {', '.join(BUILTIN_NAMES)}",
        "llamacpp": "give a GGUF file, e.g. llamacpp:/models/model.gguf",
        "hf": "give a local checkpoint directory or a hub id, e.g. hf:runs/planner/checkpoint-100",
        "openai": "give MODEL@BASE_URL, e.g. openai:qwen@http://127.0.0.1:8000/v1",
        "vllm": "give a builtin name, a local directory or a hub id, e.g. vllm:qwen2.5-coder-0.5b-instruct",
        "scripted": "name a scripted model, e.g. scripted:echo",
    }.get(kind, _SPEC_HELP)


def openai_endpoint(spec: ModelSpec) -> tuple[str, list[str]]:
    """Split an openai target `MODEL@URL[,URL|URL...]` into the model name and its base URLs."""
    match = re.search(r"@(?=https?://)", spec.target)
    if match is None:
        if "@" in spec.target:
            raise ConfigError(
                f"base URL in {spec.raw!r} must start with http:// or https://",
                "write openai:MODEL@http://host:port/v1",
            )
        # No URL: the standard OpenAI environment variable, then the public API.
        base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
        return spec.target, [base.rstrip("/")]
    model, url_text = spec.target[: match.start()], spec.target[match.end():]
    if not model:
        raise ConfigError(f"no model name before '@' in {spec.raw!r}", "write openai:MODEL@http://host:port/v1")
    urls = [u.strip().rstrip("/") for u in re.split(r"[,|]", url_text) if u.strip()]
    for url in urls:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"bad base URL {url!r} in {spec.raw!r}", "write each URL as http://host:port/v1")
    return model, urls


def int_option(spec: ModelSpec, key: str, default: int, minimum: int = 0) -> int:
    """An integer option, or ConfigError naming the spec and the key."""
    value = spec.options.get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"option {key}={value!r} in {spec.raw!r} is not an integer", f"write {key}=<integer>") from None
    if number < minimum:
        raise ConfigError(f"option {key}={number} in {spec.raw!r} is below {minimum}", f"use {key}>={minimum}")
    return number


def float_option(spec: ModelSpec, key: str, default: float) -> float:
    """A float option, or ConfigError naming the spec and the key."""
    value = spec.options.get(key)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"option {key}={value!r} in {spec.raw!r} is not a number", f"write {key}=<number>") from None


def bool_option(spec: ModelSpec, key: str, default: bool) -> bool:
    """A yes/no option (1/0, true/false, yes/no), or ConfigError naming the spec and the key."""
    value = spec.options.get(key)
    if value is None:
        return default
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if value.lower() not in words:
        raise ConfigError(f"option {key}={value!r} in {spec.raw!r} is not yes or no", f"write {key}=1 or {key}=0")
    return words[value.lower()]
