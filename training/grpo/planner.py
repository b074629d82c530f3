"""The trainable planner: a Hugging Face causal LM and its tokenizer, from a planner spec."""

from __future__ import annotations

from pathlib import Path

from tl_eval.harness.errors import ConfigError, ModelError

TINY = "random:tiny"
SMOLLM2 = "builtin:smollm2-135m-instruct"


def base_dir(spec: str, output: Path, seed: int = 0) -> Path:
    """A local model directory for the planner spec; the random test model is written under `output/base`."""
    from tl_eval.training.reason_rm.backbone import smollm2_dir, smollm2_tokenizer, tiny_config

    if spec == SMOLLM2:
        return smollm2_dir()  # the fp32 copy of the packaged GGUF, made once (shared with the Reason RM)
    if spec == TINY:
        target = output / "base"
        if not (target / "config.json").is_file():
            import torch
            from transformers import LlamaForCausalLM

            tok = smollm2_tokenizer()
            torch.manual_seed(seed)
            model = LlamaForCausalLM(tiny_config(len(tok)))
            model.generation_config.eos_token_id = tok.eos_token_id
            model.generation_config.pad_token_id = tok.pad_token_id
            model.save_pretrained(target)
            tok.save_pretrained(target)
        return target
    if spec.startswith("builtin:"):
        raise ConfigError(f"planner {spec!r} cannot be trained", f"train {SMOLLM2}, {TINY}, or hf:PATH (a local directory)")
    path = Path(spec[3:] if spec.startswith("hf:") else spec).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"--planner {spec!r}: {path} is not a Hugging Face model directory (no config.json)",
                          f"pass {SMOLLM2}, {TINY}, or a directory written by save_pretrained")
    return path


def load_planner(path: Path):
    """(model, tokenizer) from a local directory, in float32 on the CPU (the trainer moves it)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the planner from {path}: {e}", "check that the directory is complete") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        raise ConfigError(f"the planner tokenizer in {path} has no chat template",
                          "train an instruction-tuned (chat) model; the planner prompt is a chat message")
    return model, tok
