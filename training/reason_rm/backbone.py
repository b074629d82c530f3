"""Resolve a `--base SPEC` into a trainable Hugging Face decoder backbone and its tokenizer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.errors import ConfigError, ModelError
from tl_eval.harness.models.builtin_hf import builtin_hf_dir, fix_tokenizer

SMOLLM2_SPEC = "builtin:smollm2-135m-instruct"
TINY_SPEC = "random:tiny"  # a 2-layer random Llama with the SmolLM2 tokenizer: tests and smoke runs only


@dataclass
class Backbone:
    """A decoder (without its LM head), its tokenizer, and whether it is small enough to fine-tune fully."""

    model: object  # transformers PreTrainedModel returning last_hidden_state
    tokenizer: object
    spec: str
    tiny: bool


def smollm2_dir() -> Path:
    """The float32 copy of the builtin SmolLM2 GGUF (shared with the planner trainer and vLLM)."""
    return builtin_hf_dir("smollm2-135m-instruct")


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    return fix_tokenizer(AutoTokenizer.from_pretrained(smollm2_dir()))


def tiny_config(vocab_size: int):
    """The config of the random test backbone: 2 layers, hidden 32."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)


def _base_model_of(causal_lm):
    # The reward model needs hidden states only; drop the LM head (for SmolLM2 it is tied to the embeddings).
    return causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else causal_lm.base_model


def load_backbone(spec: str, *, seed: int = 0) -> Backbone:
    """Build the backbone named by `spec`: builtin:smollm2-135m-instruct, random:tiny, hf:PATH or a local dir."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    if spec == SMOLLM2_SPEC:
        path = smollm2_dir()
        model = AutoModel.from_pretrained(path, dtype=torch.float32)
        return Backbone(model, fix_tokenizer(AutoTokenizer.from_pretrained(path)), spec, tiny=False)
    if spec == TINY_SPEC:
        from transformers import AutoModel as _AM

        tok = smollm2_tokenizer()
        torch.manual_seed(seed)
        model = _AM.from_config(tiny_config(len(tok)))
        return Backbone(model, tok, spec, tiny=True)
    if spec.startswith("builtin:"):
        raise ConfigError(f"unknown builtin backbone {spec!r}", f"use {SMOLLM2_SPEC}, {TINY_SPEC}, or hf:PATH")
    path = Path(spec[3:] if spec.startswith("hf:") else spec)
    if not (path / "config.json").is_file():
        raise ConfigError(f"--base {spec!r}: {path} is not a Hugging Face model directory (no config.json)",
                          f"pass {SMOLLM2_SPEC} or a local directory written by save_pretrained")
    try:
        model = AutoModel.from_pretrained(path, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load backbone from {path}: {exc}", "check that the directory is complete") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    n_params = sum(p.numel() for p in model.parameters())
    return Backbone(model, tok, spec, tiny=n_params < 20_000_000)
