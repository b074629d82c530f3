"""What a trained planner's directory says about itself.

`describe` is the `tl_eval.checkpoint_info` entry point: the evaluation records its answer in config.json
(the leaderboard's training column) without reading the trainer's files itself.
"""

from __future__ import annotations

import json
from pathlib import Path

TRAIN_META = "tl_eval_train.json"  # written into every checkpoint by tl-eval train


def read_meta(folder: str | Path) -> dict | None:
    """The checkpoint's tl_eval_train.json, or None when the folder is not a tl-eval checkpoint."""
    meta = Path(folder) / TRAIN_META
    try:
        return json.loads(meta.read_text()) if meta.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def describe(folder: str | Path) -> dict:
    """`{training_mode, checkpoint[, reward_gain]}` for a tl-eval checkpoint; {} for anything else."""
    info = read_meta(folder)
    if info is None:
        return {}
    out = {"training_mode": (info.get("train_config") or {}).get("mode"), "checkpoint": str(Path(folder).resolve())}
    if info.get("reward_gain") is not None:
        out["reward_gain"] = info["reward_gain"]
    return out
