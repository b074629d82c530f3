"""Save and load a Reason RM directory: rm_config.json, heads, a LoRA adapter or a full backbone, tokenizer."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tl_eval.harness.errors import ModelError
from tl_eval.training.reason_rm.backbone import load_backbone
from tl_eval.training.reason_rm.model import ReasonRM

FORMAT = "tl-eval-reason-rm"
VERSION = 1


@dataclass
class RMConfig:
    """What a saved RM needs to rebuild itself; written as rm_config.json."""

    base: str
    mode: str  # "lora" (adapter over `base`) or "full" (the whole backbone is saved)
    hidden_size: int
    max_length: int = 256
    lora: dict = field(default_factory=dict)
    base_seed: int = 0  # rebuilds a random:tiny base identically in LoRA mode
    format: str = FORMAT
    version: int = VERSION


def hidden_size_of(model) -> int:
    cfg = model.config
    return int(getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd"))


def wrap_lora(backbone_model, r: int, alpha: int, dropout: float = 0.0, top_layers: int | None = None):
    """A peft LoRA wrapper over the attention and MLP projections of a decoder (of its last `top_layers` only)."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in backbone_model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = sorted(names & {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                              "c_attn", "c_proj", "c_fc", "query_key_value", "dense"}) or sorted(names)
    n_layers = getattr(backbone_model.config, "num_hidden_layers", None)
    layers, pattern = None, None
    if top_layers and n_layers and top_layers < n_layers:
        pattern = next((n.rsplit(".", 1)[-1] for n, m in backbone_model.named_modules()
                        if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers), "layers")
        # Adapters on the top layers only: backward then stops there, which makes CPU steps several times cheaper.
        layers = list(range(n_layers - top_layers, n_layers))
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none",
                     layers_to_transform=layers, layers_pattern=pattern)
    return get_peft_model(backbone_model, cfg)


def save_rm(rm: ReasonRM, tokenizer, cfg: RMConfig, out: str | Path) -> Path:
    """Write the RM to `out`; small (adapter + heads) in LoRA mode."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    heads = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in rm.heads().state_dict().items()}
    save_file(heads, str(out / "heads.safetensors"))
    if cfg.mode == "lora":
        rm.backbone.save_pretrained(str(out / "adapter"))
    else:
        rm.backbone.save_pretrained(str(out / "backbone"), safe_serialization=True)
    tokenizer.save_pretrained(str(out / "tokenizer"))
    (out / "rm_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    return out


def read_config(path: str | Path) -> RMConfig:
    path = Path(path)
    f = path / "rm_config.json"
    if not f.is_file():
        raise ModelError(f"{path} is not a Reason RM directory (no rm_config.json)",
                         "pass the --output directory of `tl-eval train-rm`")
    raw = json.loads(f.read_text())
    if raw.get("format") != FORMAT or raw.get("version") != VERSION:
        raise ModelError(f"{f} has format {raw.get('format')!r} v{raw.get('version')}, expected {FORMAT} v{VERSION}",
                         "retrain the RM with this version of tl-eval")
    return RMConfig(**raw)


def load_rm(path: str | Path, device: str | torch.device | None = None) -> tuple[ReasonRM, object, RMConfig]:
    """The RM (eval mode, on `device`: CUDA when available unless told), its tokenizer and config."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    cfg = read_config(path)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tok = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
    tok.padding_side = "right"
    if cfg.mode == "full":
        backbone = AutoModel.from_pretrained(str(path / "backbone"), dtype=torch.float32)
    else:
        from peft import PeftModel

        backbone = PeftModel.from_pretrained(load_backbone(cfg.base, seed=cfg.base_seed).model, str(path / "adapter"))
    rm = ReasonRM(backbone, cfg.hidden_size)
    rm.heads().load_state_dict(load_file(str(path / "heads.safetensors")), strict=True)
    return rm.to(device).eval(), tok, cfg
