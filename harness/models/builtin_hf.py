"""A builtin model as a Hugging Face folder (float32 safetensors), for the backends that cannot read GGUF files.

vLLM 0.32 dropped GGUF loading (`LLM(model="x.gguf")` parses the file as a JSON config), and training needs
plain weights, so the packaged GGUF is dequantized once with transformers' GGUF reader into the models cache.
The weights are the quantized values made exact in float32: a vLLM or hf run on this folder uses the same
weights as llama.cpp on the GGUF, though not the same kernels.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from tl_eval.harness.config import default_cache_dir
from tl_eval.harness.errors import ModelError
from tl_eval.harness.models.builtin import builtin_path

# Both builtins are ChatML models whose GGUF metadata leaves eos at <|endoftext|>; a chat turn ends at <|im_end|>.
_TURN_END = "<|im_end|>"


def hf_copy_path(name: str) -> Path:
    return default_cache_dir() / f"{name}-fp32"


def _complete(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer_config.json").is_file()


def fix_tokenizer(tok):
    """The chat turn's end as eos and pad, padding on the right (what generation and training expect)."""
    tok.eos_token = _TURN_END
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def builtin_hf_dir(name: str) -> Path:
    """The float32 folder of builtin `name`, converted from its verified GGUF on first use (about 20 s for 0.5B)."""
    out = hf_copy_path(name)
    if _complete(out):
        return out
    gguf = builtin_path(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "w") as lock:  # concurrent first runs convert once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(out):
            return out
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ModelError(f"converting builtin {name} to a Hugging Face folder needs transformers",
                             "pip install 'tl-eval[train]' (or bash install.sh vllm)") from None
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The GGUF loader marks the model quantized, which blocks saving; the weights are float32 already.
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        tok = fix_tokenizer(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))
        model.generation_config.eos_token_id = tok.convert_tokens_to_ids(_TURN_END)
        model.generation_config.pad_token_id = tok.pad_token_id
        # Written beside and renamed, so an interrupted conversion never leaves a folder that looks complete.
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out
