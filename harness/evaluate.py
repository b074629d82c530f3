"""Resolve a RunConfig, check every precondition, run each task, and write the run directory."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.config import (NO_PLANNER, PLANNER_FORMATS, RunConfig, VerifierSettings, check_numbers,
                                    default_data_dir)
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models import load_generator, parse_spec, preflight
from tl_eval.harness.models.base import Generator
from tl_eval.harness.planners import REFERENCE_FINGERPRINT, check_reference_plans, resolve_planner
from tl_eval.harness.pipeline.cache import Cache
from tl_eval.harness.pipeline.interventions import Condition, parse_conditions
from tl_eval.harness.pipeline.run import Evaluation
from tl_eval.harness.pipeline.score import score_task
from tl_eval.harness.records import RunResult, SampleRecord, TaskResult
from tl_eval.harness.machine import host_facts
from tl_eval.harness.results import RunDir, git_hash, package_versions, problems_fingerprint
from tl_eval.harness.task import Task, get_task
from tl_eval.harness.types import Problem
from tl_eval.harness.writes import check_writable_dir, check_writable_file


@dataclass
class Prepared:
    """A run whose preconditions all hold: tasks with their problems, and model specs that load."""

    config: RunConfig
    tasks: list[tuple[Task, list[Problem], int]]  # task, problems (after --limit), full size
    conditions: list
    planner_spec: object
    executor_spec: object
    paraphraser_spec: object | None
    code_verifier: object | None = None  # shared by the run's code tasks; closed when the run ends
    planner_system: str | None = None  # "reference plan" or "self-planner" (harness/planners.py), else None
    planner_run_name: str | None = None  # the run id's first part for those systems


def load_task_problems(names: list[str], verifier: VerifierSettings, data_dir: str | Path | None = None,
                       limit: int | None = None, split: str = "test") -> list[tuple[Task, list[Problem], int]]:
    """Each task, configured with `verifier`, its first `limit` problems, and its size."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    out = []
    for name in names:
        task = get_task(name)
        task.configure(**verifier.task_options())
        problems = task.load(data_dir, split)
        out.append((task, problems[:limit] if limit is not None else problems, len(problems)))
    return out


def prepare(config: RunConfig) -> Prepared:
    """Every check that can fail, before the first generation."""
    if not config.tasks:
        raise ConfigError("no tasks given", "pass --tasks, e.g. --tasks humaneval,gsm8k (see `tl-eval tasks`)")
    check_numbers(config)
    check_writable_dir(Path(config.output), "the output folder", "--output DIR")
    if config.cache_path() is not None:
        check_writable_file(config.cache_path(), "the generation cache", "--cache PATH (or --no-cache)")
    if config.planner_format not in PLANNER_FORMATS:
        raise ConfigError(f"unknown planner format {config.planner_format!r}",
                          f"use --planner-format {' or '.join(PLANNER_FORMATS)}")
    if config.executor_alone:
        asked = [c for c in parse_conditions(",".join(config.conditions)) if c.name not in ("full", "none")]
        if asked:
            raise ConfigError(f"--planner none evaluates the executor alone; condition(s) "
                              f"{', '.join(map(str, asked))} need a planner", "drop --conditions, or give a --planner")
        conditions = [Condition("none")]
        planner_spec = None
        choice = None
    else:
        conditions = parse_conditions(",".join(config.conditions))
        choice = resolve_planner(config.planner, config.executor)
        planner_spec = parse_spec(choice.spec, frozen=config.frozen_executor) if choice.spec else None
    executor_spec = parse_spec(config.executor, frozen=config.frozen_executor)
    paraphraser_spec = None
    if any(c.name == "paraphrased" for c in conditions):
        if not config.paraphraser:
            raise ConfigError("condition 'paraphrased' needs a paraphrasing model",
                              "pass --paraphraser SPEC (e.g. --paraphraser frozen) or drop 'paraphrased'")
        paraphraser_spec = parse_spec(config.paraphraser, frozen=config.frozen_executor)
    tasks = load_task_problems(config.tasks, config.verifier, config.data_dir, config.limit)
    if choice is not None and choice.spec is None:
        check_reference_plans(tasks)
    code_verifier = None
    if any(t.uses_sandbox for t, _, _ in tasks):
        from tl_eval.harness.verify.code import CodeVerifier

        # Started now: its tier probe is a precondition, and all code tasks of the run share its workers.
        code_verifier = CodeVerifier(config.verifier.task_options()["sandbox_limits"], config.sandbox_tier,
                                     config.allow_unsandboxed)
        for task, _, _ in tasks:
            task.configure(code_verifier=code_verifier)
    try:
        for spec in {s.raw: s for s in (planner_spec, executor_spec, paraphraser_spec) if s is not None}.values():
            preflight(spec)
        if config.rm and not Path(config.rm).is_dir():
            raise ConfigError(f"--rm {config.rm}: no such directory", "pass a directory written by `tl-eval train-rm`")
    except BaseException:
        if code_verifier is not None:
            code_verifier.close()
        raise
    return Prepared(config, tasks, conditions, planner_spec, executor_spec, paraphraser_spec, code_verifier,
                    choice.system if choice else None, choice.run_name if choice else None)


def _short(spec_raw: str) -> str:
    tail = spec_raw.split(":", 1)[-1].split("?")[0].split("@")[0].rstrip("/")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(tail).name or tail)[:40]


def run(prep: Prepared, show_progress: bool = True, log: Callable[[str], None] = print) -> tuple[Path, RunResult]:
    """Generate, verify and score every task; returns the run directory and its result (results.json)."""
    cfg = prep.config
    loaded: dict[str, Generator] = {}

    def get(spec) -> Generator:
        if spec.raw not in loaded:  # one copy of the weights when planner and executor are the same model
            loaded[spec.raw] = load_generator(spec, frozen=cfg.frozen_executor)
        return loaded[spec.raw]

    cache = Cache(cfg.cache_path())
    try:
        planner = get(prep.planner_spec) if prep.planner_spec is not None else None
        executor = get(prep.executor_spec)
        paraphraser = get(prep.paraphraser_spec) if prep.paraphraser_spec else None
        reference = prep.planner_spec is None and not cfg.executor_alone  # --planner reference: no model
        planner_name = prep.planner_run_name or (_short(prep.planner_spec.raw) if planner is not None
                                                  else "executor-alone")
        planner_fp = planner.fingerprint() if planner is not None else (
            REFERENCE_FINGERPRINT if reference else NO_PLANNER)
        run_id = cfg.run_id or f"{planner_name}__{_short(prep.executor_spec.raw)}__" \
                               f"{cfg.identity(planner_fp, executor.fingerprint())}"
        run_dir = RunDir(Path(cfg.output) / run_id)
        evaluation = Evaluation(cfg, planner, executor, cache, prep.conditions, paraphraser,
                                show_progress=show_progress, log=log, reference_plans=reference)
        scorer = _load_scorer(cfg.rm)
        config_json = {
            "run_id": run_id, "config": cfg.to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "planner": ({"spec": prep.planner_spec.raw, "fingerprint": planner_fp,
                         **({"system": prep.planner_system, "requested": cfg.planner} if prep.planner_system else {}),
                         **_checkpoint_info(prep.planner_spec)} if planner is not None
                        else {"spec": cfg.planner, "fingerprint": planner_fp, "system": prep.planner_system}
                        if reference else {"spec": NO_PLANNER, "fingerprint": None, "executor_alone": True}),
            "executor": {"spec": prep.executor_spec.raw, "fingerprint": executor.fingerprint()},
            "conditions": [str(c) for c in prep.conditions], "versions": package_versions(), "git": git_hash(),
            "machine": {"host": host_facts(), "executor": executor.kernel_facts(),
                        **({"planner": planner.kernel_facts()} if planner is not None else {})},
            "tasks": {}}
        if prep.code_verifier is not None:
            config_json["sandbox"] = prep.code_verifier.describe()
        result = RunResult(run_id, {}, config=config_json, versions=config_json["versions"], systems={
            "planner": prep.planner_spec.raw if planner is not None else (cfg.planner if reference else NO_PLANNER),
            "executor": prep.executor_spec.raw})
        for task, problems, total in prep.tasks:
            config_json["tasks"][task.name] = {
                "task_type": task.task_type, "source": task.source(Path(cfg.data_dir) if cfg.data_dir else default_data_dir()),
                "problems_fingerprint": problems_fingerprint([p.problem_id for p in problems],
                                                             [p.prompt for p in problems]),
                "problem_ids": [p.problem_id for p in problems]}
            run_dir.write_config(config_json)
            try:
                task_run = evaluation.run_task(task, problems)
            finally:
                task.close()
            if scorer is not None:
                _score_traces(scorer, task, problems, task_run.records)
            task_result = score_task(task_run, cfg.k, cfg.seed)
            if scorer is not None:
                task_result.rm = _rm_metrics(task_run.records, task_result)
            run_dir.write_samples(task.name, task_run.records)
            result.tasks[task.name] = task_result
            result.n_samples[task.name] = {"original": total, "effective": len(problems)}
        result.model_calls = {"planner": evaluation.planner.model_calls if planner is not None else 0,
                              "executor": evaluation.executor.model_calls}
        run_dir.write_results(result)
        return run_dir.path, result
    finally:
        for g in loaded.values():
            g.close()
        cache.close()
        if prep.code_verifier is not None:
            prep.code_verifier.close()


def _checkpoint_info(spec) -> dict:
    """What a trained checkpoint says about itself, from the packages that train them (entry points
    `tl_eval.checkpoint_info`: a function of the model directory, returning {} for one it did not write)."""
    if spec.kind != "hf" or not Path(spec.target).is_dir():
        return {}
    from importlib.metadata import entry_points

    for ep in entry_points(group="tl_eval.checkpoint_info"):
        info = ep.load()(spec.target)
        if info:
            return info
    return {}


def _load_scorer(rm_dir: str | None):
    if not rm_dir:
        return None
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="tl_eval.trace_scorers") if ep.name == "rm"]
    if not eps:
        raise ConfigError("--rm needs the Reason RM code", "install tl-eval with the train extra: pip install -e .[train]")
    return eps[0].load()(rm_dir)


def _score_traces(scorer, task: Task, problems: list[Problem], records: list[SampleRecord]) -> None:
    by_id = {p.problem_id: p for p in problems}
    scored = [r for r in records if r.executor_trace]
    scores = scorer.score([r.executor_trace for r in scored], [by_id[r.problem_id].prompt for r in scored],
                          task.task_type)
    for r, s in zip(scored, scores):
        r.rm_score = float(s)


def _rm_metrics(records: list[SampleRecord], result: TaskResult) -> dict:
    """Mean RM score per condition, and rm × uplift per sample (`rm_lift`) and per task (`rm_uplift`).

    These are the harness's reading of a trace's value; the trainer's TraceLift *reward* combines the same
    parts differently (training/rewards.py), so they carry other names.
    """
    per_cond: dict[str, list[float]] = {}
    for r in records:
        if r.rm_score is not None:
            per_cond.setdefault(r.condition, []).append(r.rm_score)
    out = {"mean_score": {c: sum(v) / len(v) for c, v in per_cond.items()}}
    none = {r.key: r for r in records if r.condition == "none"}
    lifts = []
    for r in records:
        if r.condition == "full" and r.rm_score is not None and r.key in none:
            r.rm_lift = r.rm_score * (float(r.passed) - float(none[r.key].passed))
            lifts.append(r.rm_lift)
    if lifts:
        out["rm_lift_mean"] = sum(lifts) / len(lifts)
    if result.uplift and "full" in out["mean_score"]:
        out["rm_uplift"] = out["mean_score"]["full"] * result.uplift["uplift"]
    return out
