"""Leaderboard baselines: recipes of the four standard systems per task, run (training what is missing) and recorded.

Systems: `executor-alone` (condition none only), `zero-shot` (the untrained planner), `exec-only` and `tracelift`
(planners trained with `tl-eval train` in that mode). Recipes are `baselines/recipes/NAME.yaml`; entries are
`baselines/entries/NAME.json` (a small summary plus the evaluation's run id).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from tl_eval.harness.errors import ConfigError
from tl_eval.training.grpo.checkpoint import read_meta

SYSTEMS = ("executor-alone", "zero-shot", "exec-only", "tracelift")
EMPTY_PLANNER = "tl-empty-plan"  # scripted planner that writes nothing: the executor-alone system plans for free


def baselines_dir() -> Path:
    """`baselines/` beside the training package (the repository's folder), or $TL_EVAL_BASELINES."""
    import os

    env = os.environ.get("TL_EVAL_BASELINES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "baselines"


@dataclass
class Recipe:
    """How to build and evaluate one standard system on one task."""

    name: str
    task: str
    system: str
    train_config: str | None = None  # YAML for exec-only / tracelift, and the base planner of zero-shot
    rm: str | None = None  # tracelift: the Reason RM directory
    checkpoint: str | None = None  # default: runs/train/NAME
    train_task: str | None = None  # default: task (HumanEval has no train split: its planners train on MBPP)
    eval: dict = field(default_factory=dict)  # RunConfig fields: limit, executor, conditions, seed, output ...

    def validate(self, where: str) -> None:
        if self.system not in SYSTEMS:
            raise ConfigError(f"{where}: unknown system {self.system!r}", f"use one of: {', '.join(SYSTEMS)}")
        if self.system != "executor-alone" and not self.train_config:
            raise ConfigError(f"{where}: system {self.system} needs train_config (it names the planner)",
                              "add train_config: training/configs/cpu-small.yaml")


def _resolve(path: str | None, root: Path) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return str(p)
    return str(root.parent / p)  # recipes name repository-relative paths


def load_recipe(name: str, root: Path | None = None) -> Recipe:
    root = root or baselines_dir()
    path = root / "recipes" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(recipe_names(root)) or "none"
        raise ConfigError(f"no baseline recipe {name!r} ({path} does not exist)", f"known recipes: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    try:
        recipe = Recipe(**{"name": name, **data})
    except TypeError as e:
        raise ConfigError(f"{path}: {e}", "recipe keys: task, system, train_config, rm, checkpoint, train_task, eval") from None
    recipe.validate(str(path))
    recipe.train_config = _resolve(recipe.train_config, root)
    recipe.rm = _resolve(recipe.rm, root)
    recipe.checkpoint = _resolve(recipe.checkpoint, root)
    return recipe


def recipe_names(root: Path | None = None) -> list[str]:
    root = root or baselines_dir()
    return sorted(p.stem for p in (root / "recipes").glob("*.yaml"))


def entry_path(name: str, root: Path | None = None) -> Path:
    return (root or baselines_dir()) / "entries" / f"{name}.json"


def list_entries(root: Path | None = None) -> list[dict]:
    """One row per recipe: the recorded entry when there is one."""
    rows = []
    for name in recipe_names(root):
        path = entry_path(name, root)
        entry = json.loads(path.read_text()) if path.is_file() else None
        recipe = load_recipe(name, root)
        rows.append({"name": name, "task": recipe.task, "system": recipe.system, "entry": entry})
    return rows


def _register_empty_planner() -> None:
    from tl_eval.harness.models import register_scripted

    register_scripted(EMPTY_PLANNER, lambda messages: "")


def _checkpoint(recipe: Recipe, root: Path) -> Path:
    return Path(recipe.checkpoint) if recipe.checkpoint else root.parent / "runs" / "train" / recipe.name


def _ensure_trained(recipe: Recipe, root: Path, log) -> tuple[Path, dict | None]:
    """The trained planner's checkpoint, training (or resuming) it when its final adapter is missing."""
    from tl_eval.training.grpo import load_train_config, train

    ckpt = _checkpoint(recipe, root)
    if (ckpt / "adapter_config.json").is_file() and read_meta(ckpt) is not None:
        log(f"{recipe.name}: using trained planner {ckpt}")
        return ckpt, None
    cfg = load_train_config(recipe.train_config, mode=recipe.system, task=recipe.train_task or recipe.task,
                            output=str(ckpt), rm=recipe.rm)
    from transformers.trainer_utils import get_last_checkpoint

    resume = ckpt.is_dir() and get_last_checkpoint(str(ckpt)) is not None
    log(f"{recipe.name}: training a {recipe.system} planner into {ckpt}" + (" (resuming)" if resume else ""))
    result = train(cfg, resume=resume, log=log)
    return ckpt, {"checkpoint": str(ckpt), "steps": result.steps, "seconds": round(result.seconds, 1),
                  "executor_calls": result.counters}


def _planner_spec(recipe: Recipe, root: Path, log) -> tuple[str, dict | None]:
    if recipe.system == "executor-alone":
        _register_empty_planner()
        return f"scripted:{EMPTY_PLANNER}", None
    if recipe.system == "zero-shot":
        from tl_eval.training.grpo import load_train_config
        from tl_eval.training.grpo.planner import base_dir

        cfg = load_train_config(recipe.train_config)
        # The same fp32 weights the trained planners start from, through the same backend: a fair comparison.
        return f"hf:{base_dir(cfg.planner, _checkpoint(recipe, root), cfg.seed)}", None
    ckpt, train_info = _ensure_trained(recipe, root, log)
    return f"hf:{ckpt}", train_info


def run_baseline(name: str, root: Path | None = None, show_progress: bool = True, log=print) -> dict:
    """Train what is missing, evaluate, and record `baselines/entries/NAME.json`; returns the entry."""
    from tl_eval.harness.config import RunConfig
    from tl_eval.harness.evaluate import prepare, run

    root = root or baselines_dir()
    recipe = load_recipe(name, root)
    planner, train_info = _planner_spec(recipe, root, log)
    eval_opts = dict(recipe.eval)
    if recipe.system == "executor-alone":
        eval_opts["conditions"] = ["none"]
    eval_opts.setdefault("output", str(root.parent / "runs"))
    try:
        config = RunConfig(tasks=[recipe.task], planner=planner, **eval_opts)
    except TypeError as e:
        raise ConfigError(f"recipe {name}: bad eval options: {e}", "eval keys are RunConfig fields (limit, seed, ...)") from None
    run_dir, result = run(prepare(config), show_progress=show_progress, log=log)
    flat = result.tasks[recipe.task].flat()
    entry = {
        "name": name, "task": recipe.task, "system": recipe.system, "planner": planner,
        "executor": result.systems["executor"], "run_id": result.run_id, "run_dir": str(run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_problems": result.n_samples[recipe.task]["effective"],
        "metrics": {k: flat.get(k) for k in ("pair_pass@1,full", "exec_pass@1,none", "uplift,full",
                                              "uplift_ci_low,full", "uplift_ci_high,full") if k in flat},
        "recipe": asdict(recipe),
    }
    if train_info is not None:
        entry["train"] = train_info
    path = entry_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, indent=2) + "\n")
    return entry
