"""Leaderboard baselines: recipes of the four standard systems per task, run (training what is missing) and recorded.

Systems: `executor-alone` (condition none only), `zero-shot` (the untrained planner), `exec-only` and `tracelift`
(planners trained with `tl-eval train` in that mode), `reference-plan` (the task's reference plan: the headroom)
and `self-planner` (the executor's own model as planner). Recipes are `baselines/recipes/NAME.yaml`; entries are
`baselines/entries/NAME.json` (a small summary plus the evaluation's run id).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from tl_eval.harness.config import NO_PLANNER, default_baselines_dir
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.machine import differences
from tl_eval.harness.metrics.paired import mcnemar_exact, paired_bootstrap_ci, pooled_bootstrap
from tl_eval.harness.records import RunResult, outcomes
from tl_eval.harness.results import load_samples
from tl_eval.training.grpo.checkpoint import read_meta
from tl_eval.training.grpo.config import MODES, TrainConfig

SYSTEMS = ("executor-alone", "zero-shot", "exec-only", "tracelift", "reference-plan", "self-planner")
# Systems whose planner is not a model the trainer makes: `--planner reference` / `--planner self` (harness/planners.py).
NAMED_PLANNERS = {"reference-plan": "reference", "self-planner": "self"}


def baselines_dir() -> Path:
    return default_baselines_dir()


@dataclass
class Recipe:
    """How to build and evaluate one standard system on one task."""

    name: str
    task: str
    system: str
    train_config: str | None = None  # YAML for exec-only / tracelift, and the base planner of zero-shot
    rm: str | None = None  # tracelift: the Reason RM directory
    # tracelift: how to build the RM when `rm` has none: {groups: build_groups options (split, limit, seed),
    # train: train-rm options (TrainConfig fields: lora_layers, max_groups, base, ...)}
    rm_build: dict | None = None
    checkpoint: str | None = None  # default: runs/train/NAME
    train_task: str | None = None  # default: task (HumanEval has no train split: its planners train on MBPP)
    eval: dict = field(default_factory=dict)  # RunConfig fields: limit, executor, conditions, seed, output ...
    # exec-only / tracelift: one checkpoint per training seed (runs/train/NAME-sSEED), each evaluated and recorded as
    # NAME-sSEED, and NAME itself the entry pooled over them (pooled_entry)
    seeds: list[int] | None = None
    train_seed: int | None = None  # set by for_seed: overrides the train config's seed

    def validate(self, where: str) -> None:
        if self.system not in SYSTEMS:
            raise ConfigError(f"{where}: unknown system {self.system!r}", f"use one of: {', '.join(SYSTEMS)}")
        if self.system not in ("executor-alone", *NAMED_PLANNERS) and not self.train_config:
            raise ConfigError(f"{where}: system {self.system} needs train_config (it names the planner)",
                              "add train_config: training/configs/cpu-small.yaml")
        if self.seeds is not None and (self.system not in MODES or len(set(self.seeds)) < 2
                                       or not all(isinstance(x, int) for x in self.seeds)):
            raise ConfigError(f"{where}: seeds {self.seeds!r} need a trained system and two or more distinct integers",
                              "e.g. seeds: [1234, 1235, 1236] on an exec-only or tracelift recipe")

    def for_seed(self, seed: int) -> "Recipe":
        """The recipe of one training seed: its own name, checkpoint and training seed."""
        ckpt = f"{self.checkpoint}-s{seed}" if self.checkpoint else None
        return replace(self, name=f"{self.name}-s{seed}", checkpoint=ckpt, seeds=None, train_seed=seed)


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
        raise ConfigError(f"{path}: {e}",
                          "recipe keys: task, system, train_config, rm, rm_build, checkpoint, train_task, eval") from None
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


def _checkpoint(recipe: Recipe, root: Path) -> Path:
    return Path(recipe.checkpoint) if recipe.checkpoint else root.parent / "runs" / "train" / recipe.name


def _rm_metrics(rm: Path) -> Path:
    return rm / "metrics.json"  # train_rm writes it last: the RM is complete


def _ensure_rm(recipe: Recipe, log) -> None:
    """Build the recipe's Reason RM (TraceLift-Groups from the train task's seeds, then train-rm) when its
    directory has no finished RM, so that a tracelift entry is re-created from its recipe alone."""
    if recipe.rm is None or _rm_metrics(Path(recipe.rm)).is_file() or recipe.rm_build is None:
        return  # no RM, a finished one, or none to build (the trainer names the missing directory)
    from tl_eval.training.groups.build import build_groups
    from tl_eval.training.groups.schema import write_groups
    from tl_eval.training.reason_rm.train import TrainConfig, train_rm

    rm, task = Path(recipe.rm), recipe.train_task or recipe.task
    build = {"groups": {}, "train": {}, **recipe.rm_build}
    groups = rm.parent / f"groups-{rm.name}.jsonl"
    try:
        cfg = TrainConfig(**{"base": "builtin:smollm2-135m-instruct", "progress": False, **build["train"],
                             "groups": str(groups), "output": str(rm)})
        if not groups.is_file():
            log(f"{recipe.name}: building TraceLift-Groups from {task} into {groups}")
            rows, report = build_groups(task, **build["groups"])
            write_groups(rows, groups)
            log(f"  {report.summary()}")
    except TypeError as e:  # an unknown key of rm_build.groups or rm_build.train
        raise ConfigError(f"recipe {recipe.name}: bad rm_build options: {e}",
                          "groups: build-groups options (split, limit, seed); train: train-rm options, "
                          "e.g. {lora_layers: 4, max_groups: 300}") from None
    log(f"{recipe.name}: training the Reason RM into {rm}")
    result = train_rm(cfg)
    log(f"  held-out pair accuracy {result.heldout.get('posneg_pair_acc', float('nan')):.3f}")


def _ensure_trained(recipe: Recipe, root: Path, log) -> tuple[Path, dict | None]:
    """The trained planner's checkpoint, training (or resuming) it, and its RM first, when its final adapter is
    missing."""
    from tl_eval.training.grpo import load_train_config, train

    ckpt = _checkpoint(recipe, root)
    if (ckpt / "adapter_config.json").is_file() and read_meta(ckpt) is not None:
        log(f"{recipe.name}: using trained planner {ckpt}")
        return ckpt, None
    _ensure_rm(recipe, log)
    cfg = load_train_config(recipe.train_config, mode=recipe.system, task=recipe.train_task or recipe.task,
                            output=str(ckpt), rm=recipe.rm, seed=recipe.train_seed)
    from transformers.trainer_utils import get_last_checkpoint

    resume = ckpt.is_dir() and get_last_checkpoint(str(ckpt)) is not None
    log(f"{recipe.name}: training a {recipe.system} planner into {ckpt}" + (" (resuming)" if resume else ""))
    result = train(cfg, resume=resume, log=log)
    return ckpt, {"checkpoint": str(ckpt), "steps": result.steps, "seconds": round(result.seconds, 1),
                  "executor_calls": result.counters}


def _planner_spec(recipe: Recipe, root: Path, log) -> tuple[str, dict | None]:
    if recipe.system == "executor-alone":
        return NO_PLANNER, None
    if recipe.system in NAMED_PLANNERS:
        return NAMED_PLANNERS[recipe.system], None
    if recipe.system == "zero-shot":
        from tl_eval.training.grpo import load_train_config
        from tl_eval.training.grpo.planner import base_dir

        cfg = load_train_config(recipe.train_config)
        # The same fp32 weights the trained planners start from, through the same backend: a fair comparison.
        return f"hf:{base_dir(cfg.planner, _checkpoint(recipe, root), cfg.seed)}", None
    ckpt, train_info = _ensure_trained(recipe, root, log)
    return f"hf:{ckpt}", train_info


def _portable(value, project: Path):
    """`value` with every path inside the project folder written relative to it, in every string at any depth
    (entries are committed and move with the repository: no path of this machine, e.g. of its .venv)."""
    prefixes = sorted({f"{project.resolve()}/", f"{project.absolute()}/"}, key=len, reverse=True)
    if isinstance(value, str):
        for prefix in prefixes:
            value = value.replace(prefix, "")
        return value
    if isinstance(value, dict):
        return {k: _portable(v, project) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v, project) for v in value]
    return value


def make_entry(recipe: Recipe, planner: str, result: RunResult, run_dir: Path, root: Path,
               train_info: dict | None = None) -> dict:
    """The leaderboard entry of one baseline run: small, self-contained (no run directory needed), with the
    per-problem outcomes, the fingerprints, the exact settings, the code version and the training's reward gain."""
    project, task = root.parent, recipe.task
    tr = result.tasks[task]
    task_json = tr.to_json()
    task_json.pop("leaking_samples", None)  # which samples leaked is in the run directory; the rate is kept
    planner_info = result.config.get("planner") or {}
    config = {k: result.config.get(k) for k in ("created", "conditions", "git", "versions", "machine")}
    run_config = {k: v for k, v in (result.config.get("config") or {}).items()
                  if k not in ("output", "cache", "data_dir", "run_id")}
    if run_config.get("planner"):
        run_config["planner"] = planner
    config.update(config=run_config,
                  planner={**planner_info, "spec": planner_info.get("spec", planner)},
                  executor=result.config.get("executor"), tasks={task: result.config["tasks"][task]})
    if recipe.system in ("exec-only", "tracelift"):
        ckpt = Path(planner.partition(":")[2])
        meta = read_meta(ckpt) or {}
        train = {**(train_info or {}), "checkpoint": str(ckpt), "reward_gain": meta.get("reward_gain"),
                 "reward_gain_by_function": meta.get("reward_gain_by_function"),
                 "reward_gain_by_problem": meta.get("reward_gain_by_problem"),
                 "train_config": meta.get("train_config"), "problems": len(meta.get("problem_ids") or [])}
        rm_metrics = _rm_metrics(Path(recipe.rm)) if recipe.rm else None
        if rm_metrics and rm_metrics.is_file():  # how good the RM that shaped the reward was
            m = json.loads(rm_metrics.read_text())
            train["rm"] = {"path": recipe.rm, "steps": m.get("steps"),
                           "heldout": {k: m["heldout"].get(k) for k in ("posneg_pair_acc", "posneg_group_acc",
                                                                       "total_mae", "posneg_pair_count")}}
    else:
        train = None
    return _portable({
        "name": recipe.name, "task": task, "system": recipe.system,
        "planner": planner, "executor": result.systems["executor"],
        "training_mode": planner_info.get("training_mode") or {"executor-alone": "—", "zero-shot": "none",
                                                               "reference-plan": "—", "self-planner": "none"}.get(
            recipe.system, recipe.system),
        "run_id": result.run_id, "run_dir": str(run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": f"tl-eval baselines run {recipe.name}", "recipe": asdict(recipe),
        "code_version": result.config.get("git"),
        "fingerprints": {"planner": planner_info.get("fingerprint"),
                         "executor": (result.config.get("executor") or {}).get("fingerprint")},
        "n_problems": result.n_samples[task]["effective"],
        "metrics": tr.flat(),
        "results": {"run_id": result.run_id, "metrics": {task: task_json}, "n-samples": result.n_samples,
                    "config": config, "systems": {**result.systems, "planner": planner},
                    "versions": result.versions},
        "outcomes": {task: outcomes(load_samples(run_dir, task))},
        **({"train": train} if train is not None else {}),
    }, project)


def _trained_turn(recipe: Recipe, planner: str, eval_opts: dict) -> dict:
    """A trained planner is evaluated on the turn it was trained on: its format and token budget, as its
    checkpoint records them."""
    trained = (read_meta(Path(planner.removeprefix("hf:"))) or {}).get("train_config") or {}
    turn = {"planner_max_tokens": trained.get("max_completion_length", TrainConfig.max_completion_length),
            "planner_format": trained.get("planner_format", TrainConfig.planner_format)}
    for key, value in turn.items():
        if key in eval_opts and eval_opts[key] != value:
            raise ConfigError(f"recipe {recipe.name}: eval {key} {eval_opts[key]!r} is not the trained turn's "
                              f"{value!r} ({planner})",
                              f"drop eval.{key}: a trained planner is evaluated on the turn it was trained on")
    return turn


def _evaluate(recipe: Recipe, planner: str, root: Path, show_progress: bool, log, reproduction: bool = False,
              limit: int | None = None):
    from tl_eval.harness.config import RunConfig
    from tl_eval.harness.evaluate import prepare, run

    eval_opts = dict(recipe.eval)
    if recipe.system == "executor-alone":
        eval_opts["conditions"] = ["none"]
    if recipe.system in MODES:
        eval_opts.update(_trained_turn(recipe, planner, eval_opts))
    eval_opts.setdefault("output", str(root.parent / "runs"))
    if reproduction:  # computed again, not read back from the cache
        eval_opts.update(output=str(Path(eval_opts["output"]) / "reproduce"), cache="off")
        if limit is not None:
            eval_opts["limit"] = limit
    try:
        config = RunConfig(tasks=[recipe.task], planner=planner, **eval_opts)
    except TypeError as e:
        raise ConfigError(f"recipe {recipe.name}: bad eval options: {e}",
                          "eval keys are RunConfig fields (limit, seed, ...)") from None
    return run(prepare(config), show_progress=show_progress, log=log)


def run_baseline(name: str, root: Path | None = None, show_progress: bool = True, log=print) -> dict:
    """Train what is missing, evaluate, and record `baselines/entries/NAME.json`; returns the entry. A recipe with
    `seeds` records each seed's entry first (NAME-sSEED, resumable one by one), then NAME pooled over them."""
    root = root or baselines_dir()
    recipe = load_recipe(name, root)
    if recipe.seeds:
        per_seed = [_record(recipe.for_seed(seed), root, show_progress, log) for seed in recipe.seeds]
        return _write_entry(pooled_entry(recipe, per_seed), root)
    return _record(recipe, root, show_progress, log)


def _write_entry(entry: dict, root: Path) -> dict:
    path = entry_path(entry["name"], root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, indent=2) + "\n")
    return entry


def _record(recipe: Recipe, root: Path, show_progress: bool, log) -> dict:
    planner, train_info = _planner_spec(recipe, root, log)
    run_dir, result = _evaluate(recipe, planner, root, show_progress, log)
    return _write_entry(make_entry(recipe, planner, result, run_dir, root, train_info), root)


def _pooled_value(rows: np.ndarray, n_resamples: int = 10_000) -> dict:
    """The mean of (seeds, problems) values with its hierarchical bootstrap CI and p-value against 0."""
    value, low, high, p = pooled_bootstrap(rows, np.zeros((1, rows.shape[1])), n_resamples=n_resamples)
    return {"value": value, "ci_low": low, "ci_high": high, "p_value": p}


def pooled_entry(recipe: Recipe, seeds: list[dict]) -> dict:
    """One entry for the seeds of a trained system: pass@1 of each condition, uplift and uplift_masked, each the
    mean over seeds with a hierarchical bootstrap CI (seeds, then problems: harness.metrics.paired.pooled_bootstrap),
    on the problems every seed was scored on; per-problem outcomes are the seeds' mean; each seed's figures and
    checkpoint fingerprint beside them."""
    task = recipe.task
    per = [e["outcomes"][task] for e in seeds]
    conditions = [c for c in per[0] if all(c in o for o in per)]
    problems = sorted(set.intersection(*(set(o[c]) for o in per for c in conditions)))
    if not problems:
        raise ConfigError(f"recipe {recipe.name}: its seeds' entries share no scored problem", "re-run them")
    grid = {c: np.array([[o[c][p] for p in problems] for o in per]) for c in conditions}
    metrics: dict = {"conditions": {}, "faithfulness": {"acc": {}}}
    for c, rows in grid.items():
        v = _pooled_value(rows)
        metrics["conditions"][c] = {"pass@k": {"1": v["value"]}, "n_problems": len(problems)}
        metrics["faithfulness"]["acc"][c] = {k: v[k] for k in ("value", "ci_low", "ci_high")}
    for name, cond in (("uplift", "full"), ("uplift_masked", "masked")):
        if cond in grid and "none" in grid:
            v = _pooled_value(grid[cond] - grid["none"])
            metrics[name] = {"uplift": v["value"], "uplift_ci_low": v["ci_low"], "uplift_ci_high": v["ci_high"],
                             "p_value": v["p_value"], "test": "hierarchical_bootstrap", "n_problems": len(problems)}
    first = seeds[0]
    flat = {f"pass@1,{c}": metrics["conditions"][c]["pass@k"]["1"] for c in conditions}
    flat.update({"pair_pass@1,full": flat.get("pass@1,full"), "exec_pass@1,none": flat.get("pass@1,none")})
    for name in ("uplift", "uplift_masked"):
        if name in metrics:
            cond = "full" if name == "uplift" else "masked"
            m = metrics[name]
            flat.update({f"{name},{cond}": m["uplift"], f"{name}_ci_low,{cond}": m["uplift_ci_low"],
                         f"{name}_ci_high,{cond}": m["uplift_ci_high"], f"{name}_p_value,{cond}": m["p_value"]})
    return {
        "name": recipe.name, "task": task, "system": recipe.system, "planner": f"{recipe.system} ({len(seeds)} seeds)",
        "executor": first["executor"], "training_mode": first["training_mode"], "run_id": f"pooled:{recipe.name}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": f"tl-eval baselines run {recipe.name}",
        "recipe": asdict(recipe), "code_version": first.get("code_version"),
        "fingerprints": {"executor": first["fingerprints"]["executor"]}, "n_problems": len(problems),
        "pooled_over": [{"seed": e["recipe"]["train_seed"], "entry": e["name"], "run_id": e["run_id"],
                         "planner_fingerprint": e["fingerprints"]["planner"],
                         "metrics": {k: e["metrics"].get(k) for k in ("pair_pass@1,full", "uplift,full",
                                                                        "uplift_masked,masked")},
                         "train": {k: (e.get("train") or {}).get(k) for k in ("reward_gain_by_function",
                                                                              "reward_gain_by_problem")}}
                        for e in seeds],
        "metrics": flat,
        "results": {"run_id": f"pooled:{recipe.name}", "metrics": {task: metrics},
                    "n-samples": {task: {"effective": len(problems)}},
                    "config": {"conditions": conditions, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
                    "systems": {"planner": f"{recipe.system} ({len(seeds)} seeds)", "executor": first["executor"]}},
        "outcomes": {task: {c: {p: float(grid[c][:, i].mean()) for i, p in enumerate(problems)} for c in conditions}},
    }


# The noise rule for greedy outcomes that cannot be compared exactly (docs/training.md, "Reproducing an entry"):
# near-tie flips between machines go both ways and touch few problems. Measured on 100 problems: 0 between Intel
# and AMD AVX-512 builds, 7 between AVX-512 and AVX2 ones, 4-5 from another batch composition on one machine. A real change shows as flips one way (McNemar), as a net difference that balanced flips of that count
# rarely reach, or as many flips (a prompt or model change).
NOISE_ALPHA = 0.05
NOISE_MAX_FLIP_SHARE = 0.15
NOISE_MAX_DIFFERENCE = 0.05  # |pass@1 now - recorded|


@dataclass
class Reproduction:
    """A recorded entry evaluated again: the outcomes that differ, and whether that is a pass under the rule that
    applies. `exact` when the machine facts match and the whole entry ran (then any flip is a failure); the
    noise rule otherwise."""

    name: str
    condition: str
    problems: list[str]
    differ: dict[str, tuple[float, float]]  # problem -> (recorded, now)
    machine_differences: list[str] = field(default_factory=list)
    whole_entry: bool = True
    recorded_pass: list[float] = field(default_factory=list)  # per problem, in `problems` order
    now_pass: list[float] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.whole_entry and not self.machine_differences

    @property
    def flips(self) -> tuple[int, int]:
        """(recorded pass -> now fail, recorded fail -> now pass)."""
        lost = sum(1 for was, now in self.differ.values() if (was or 0) > (now or 0))
        return lost, len(self.differ) - lost

    @property
    def p_value(self) -> float:
        return mcnemar_exact(np.array(self.recorded_pass) > 0, np.array(self.now_pass) > 0)

    @property
    def difference(self) -> tuple[float, float, float]:
        """pass@1 now - recorded, with its paired 95 % bootstrap CI."""
        return paired_bootstrap_ci(np.array(self.now_pass), np.array(self.recorded_pass))

    @property
    def ok(self) -> bool:
        if self.exact:
            return not self.differ
        n = len(self.problems)
        lost, gained = self.flips
        return (self.p_value >= NOISE_ALPHA and len(self.differ) <= NOISE_MAX_FLIP_SHARE * n
                and abs(gained - lost) <= NOISE_MAX_DIFFERENCE * n)

    def summary(self) -> list[str]:
        n, (lost, gained) = len(self.problems), self.flips
        d, lo, hi = self.difference
        lines = [f"{self.name}: {n} problems ({self.condition}), {len(self.differ)} outcomes differ "
                 f"({lost} pass -> fail, {gained} fail -> pass); pass@1 {d * 100:+.1f} pp [{lo * 100:+.1f}, "
                 f"{hi * 100:+.1f}], McNemar p = {self.p_value:.3g}"]
        if self.exact:
            lines.append("rule: exact (same machine facts, whole entry): " + ("reproduced" if self.ok else
                         "FAILED: on the same machine and build greedy outcomes must repeat"))
            return lines
        why = "; ".join(self.machine_differences) if self.machine_differences else "a subset of the entry"
        lines.append(f"rule: near-tie noise ({why}): passes when McNemar p >= {NOISE_ALPHA}, at most "
                     f"{NOISE_MAX_FLIP_SHARE:.0%} of outcomes flip and pass@1 moves by at most "
                     f"{NOISE_MAX_DIFFERENCE * 100:.0f} pp: " + ("within noise" if self.ok else "FAILED"))
        return lines


def compare_outcomes(name: str, condition: str, recorded: dict[str, float], now: dict[str, float],
                     machine_differences: list[str], whole_entry: bool) -> Reproduction:
    problems = list(now)
    return Reproduction(name, condition, problems,
                        {pid: (recorded.get(pid), rate) for pid, rate in now.items() if recorded.get(pid) != rate},
                        machine_differences, whole_entry,
                        [float(recorded.get(pid) or 0.0) for pid in problems], [float(now[pid]) for pid in problems])


def reproduce(name: str, limit: int | None = None, root: Path | None = None, show_progress: bool = False,
              log=print) -> Reproduction:
    """Re-run a recorded entry from its recipe (all its problems, or the first `limit`) and compare the outcomes
    with the recorded vector (greedy entries only: a sampled one need not repeat).

    Exact only on the same machine facts and for the whole entry: a decode step's rounding depends on the
    instruction set, the build and the other sequences of its batch (docs/models.md), so another machine or a
    subset, batched differently, can flip near ties; those are judged by the noise rule."""
    root = root or baselines_dir()
    path = entry_path(name, root)
    if not path.is_file():
        raise ConfigError(f"baseline {name!r} has no recorded entry ({path})", f"record it: tl-eval baselines run {name}")
    entry = json.loads(path.read_text())
    recorded_config = (entry.get("results") or {}).get("config") or {}
    settings = recorded_config.get("config") or {}
    if float(settings.get("temperature", 0.0)) > 0:
        raise ConfigError(f"baseline {name} was sampled (temperature {settings['temperature']}): its outcomes need "
                          "not repeat", "reproduce a greedy entry")
    recipe = load_recipe(name, root)
    planner, _ = _planner_spec(recipe, root, log)
    run_dir, result = _evaluate(recipe, planner, root, show_progress, log, reproduction=True, limit=limit)
    condition = "none" if recipe.system == "executor-alone" else "full"
    recorded = entry["outcomes"][recipe.task][condition]
    now = outcomes(load_samples(run_dir, recipe.task))[condition]
    return compare_outcomes(name, condition, recorded, now,
                            differences(recorded_config.get("machine"), result.config.get("machine")),
                            whole_entry=set(now) == set(recorded))
