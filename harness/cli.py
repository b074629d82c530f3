"""`tl-eval`: evaluate a planner-executor pair; subcommands list, verify and self-check."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from importlib.metadata import entry_points
from pathlib import Path

import click
import yaml
from click.core import ParameterSource

from tl_eval.harness.config import (DEFAULT_FROZEN, NUMERIC_RULES, PLANNER_FORMATS, RunConfig, VerifierSettings,
                                    check_numbers, default_data_dir)
from tl_eval.harness.errors import ConfigError, DataError, TLEvalError, fail
from tl_eval.harness.jsonl import read_jsonl
from tl_eval.harness.verify.math_extract import PIPELINES
from tl_eval.harness.writes import atomic_write_text

# YAML key (a long flag name with `_` or `-`, or the parameter's own name) -> click parameter name: the
# two differ for --k (k_values), --cache (cache_path) and --rm (rm_dir).
_RUN_OPTIONS: dict[str, str] = {}
_FLAG_KEYS: set[str] = set()  # the long flag names among those keys, for the hint on an unknown key

# Option defaults come from the configuration model (RunConfig's and VerifierSettings' field defaults).
_D = RunConfig(tasks=[], planner="")
_V = VerifierSettings()


def _load_yaml_config(ctx: click.Context, _param, value: str | None):
    """`--config run.yaml` becomes click's default_map, so every flag given on the command line wins."""
    if not value:
        return value
    path = Path(value)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold a mapping of option names to values")
    normalized = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(normalized) - set(_RUN_OPTIONS))
    if unknown:
        raise click.BadParameter(f"{path}: unknown keys {unknown}; valid keys are the long flag names, "
                                 f"e.g. {sorted(_FLAG_KEYS)[:6]}")
    mapped = {}
    for key, val in normalized.items():
        if isinstance(val, list):  # YAML lists for comma-separated flags
            val = ",".join(map(str, val))
        mapped[_RUN_OPTIONS[key]] = val
    ctx.default_map = {**(ctx.default_map or {}), **mapped}
    ctx.meta["tl_eval.config_file"] = str(path)
    return value


def _run_option(*decls, **kwargs):
    def deco(f):
        opt = click.option(*decls, **kwargs)(f)
        param = opt.__click_params__[-1].name
        _RUN_OPTIONS[param] = param
        for decl in decls:
            if decl.startswith("--"):
                key = decl[2:].replace("-", "_")
                _RUN_OPTIONS[key] = param
                _FLAG_KEYS.add(key)
        return opt
    return deco


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


class PluginGroup(click.Group):
    """Adds the commands other packages (training, reports) register under `tl_eval.commands`."""

    def _plugins(self) -> None:
        if getattr(self, "_loaded", False):
            return
        self._loaded = True
        for ep in entry_points(group="tl_eval.commands"):
            try:
                for cmd in ep.load():
                    self.add_command(cmd)
            except ImportError as e:  # an optional extra is missing: keep the core usable
                click.echo(f"note: commands from {ep.value} unavailable ({e})", err=True)

    def list_commands(self, ctx):
        self._plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._plugins()
        return super().get_command(ctx, name)


@click.group(cls=PluginGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"],
                                                                              "max_content_width": 110})
@click.option("--config", callback=_load_yaml_config, is_eager=True, expose_value=False,
              type=click.Path(dir_okay=False), help="YAML file whose keys are any of these options; flags win.")
@_run_option("--planner", metavar="SPEC", help="Planner model spec, e.g. builtin:qwen2.5-coder-0.5b-instruct, "
             "hf:DIR, openai:MODEL@URL, vllm:ID, a .gguf path or a checkpoint directory; `none` evaluates the "
             "executor alone (condition `none` only); `reference` uses the task's reference plan (no model); "
             "`self` uses the executor's model as planner.")
@_run_option("--planner-format", type=click.Choice(PLANNER_FORMATS), default=_D.planner_format, show_default=True,
             help="tagged: the planner's turn is opened with <reasoning> and stops at </reasoning>; free: the "
                  "planner writes its whole turn and the trace is read from its tags.")
@_run_option("--executor", default=_D.executor, show_default=True, metavar="SPEC",
             help="Executor model spec; `frozen` is the configured frozen executor.")
@_run_option("--frozen-executor", default=DEFAULT_FROZEN, show_default=True, envvar="TL_EVAL_FROZEN_EXECUTOR",
             metavar="SPEC", help="What `frozen` resolves to.")
@_run_option("--tasks", metavar="LIST", help="Comma-separated task names (see `tl-eval tasks`) or custom .yaml specs.")
@_run_option("--limit", type=int, help="Evaluate only the first N problems of each task.")
@_run_option("--n-samples", type=int, default=_D.n_samples, show_default=True, help="Planner samples per problem (n of pass@k).")
@_run_option("--temperature", type=float, default=_D.temperature, show_default=True)
@_run_option("--top-p", type=float, default=_D.top_p, show_default=True)
@_run_option("--max-tokens", type=int, help="Sets both --planner-max-tokens and --executor-max-tokens.")
@_run_option("--planner-max-tokens", type=int, default=_D.planner_max_tokens, show_default=True)
@_run_option("--executor-max-tokens", type=int, default=_D.executor_max_tokens, show_default=True)
@_run_option("--seed", type=int, default=_D.seed, show_default=True)
@_run_option("--conditions", default="full,none", show_default=True, metavar="LIST",
             help="Trace conditions: full, none, truncated@F, corrupted, filler, mismatched, paraphrased, masked, "
                  "or the set `faithfulness` (all but paraphrased).")
@_run_option("--k", "k_values", default="1,5,10", show_default=True, metavar="LIST",
             help="pass@k values to report (only k <= n-samples are reported).")
@_run_option("--data-dir", type=click.Path(file_okay=False), envvar="TL_EVAL_DATA_DIR",
             help="Local benchmark data (gsm8k/, mbpp/, math500/); default: the hub via `datasets`.")
@_run_option("--output", default=_D.output, show_default=True, type=click.Path(file_okay=False),
             help="Parent folder of run directories.")
@_run_option("--run-id", help="Name of the run directory (default: derived from models and config).")
@_run_option("--cache", "cache_path", metavar="PATH", help="Generation cache (SQLite); default "
             "$TL_EVAL_CACHE/generations.sqlite or ~/.cache/tl-eval/generations.sqlite.")
@_run_option("--no-cache", is_flag=True, help="Keep the cache in memory only (no resume).")
@_run_option("--math-pipeline", type=click.Choice(list(PIPELINES)), default=_V.math_pipeline, show_default=True,
             help="Answer extraction for math tasks: strict (the last answer the model commits to), flexible (also "
                  "the last number), strict-match (lm-eval's gsm8k filter: the first '#### N'); docs/math-and-metrics.md.")
@_run_option("--grader-timeout", type=float, default=_V.grader_timeout_s, show_default=True, help="Seconds per math-verify check.")
@_run_option("--sandbox-tier", type=click.Choice(["auto", "bwrap", "unshare", "seccomp", "none"]), default="auto",
             show_default=True, envvar="TL_EVAL_SANDBOX_TIER", help="Isolation for code execution.")
@_run_option("--allow-unsandboxed", is_flag=True, help="Permit running model code with no sandbox (unsafe).")
@_run_option("--time-limit-factor", type=float, default=_V.time_limit_factor, show_default=True,
             help="Per-test limit = max(min-time-limit, factor x reference runtime).")
@_run_option("--min-time-limit", type=float, default=_V.min_time_limit_s, show_default=True, help="Seconds; floor of a test's limit.")
@_run_option("--sample-time-cap", type=float, default=_V.sample_time_cap_s, show_default=True, help="Seconds for all tests of one sample.")
@_run_option("--memory-mb", type=int, default=_V.memory_mb, show_default=True, help="Address-space limit of tested code.")
@_run_option("--workers", type=int, help="Sandbox workers (default: number of cores).")
@_run_option("--rm", "rm_dir", type=click.Path(), help="Reason RM directory: adds RM and TraceLift scores.")
@_run_option("--paraphraser", metavar="SPEC", help="Model for the `paraphrased` condition.")
@_run_option("--quiet", is_flag=True, help="No progress bars.")
@click.version_option(package_name="tl-eval")
@click.pass_context
def main(ctx: click.Context, **opts) -> None:
    """Evaluate a planner-executor pair: `tl-eval --planner SPEC --executor frozen --tasks humaneval`.

    The planner writes a reasoning trace, the frozen executor turns problem + trace into code or an
    answer, and a verifier checks it. Results go to OUTPUT/<run_id>/ (config.json, samples_<task>.jsonl,
    results.json). Re-running the same command resumes from the generation cache.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not opts["planner"]:
        click.echo(ctx.get_help())
        ctx.exit(0 if len(sys.argv) <= 1 else 2)

    def work():
        config = _config_from_options(opts)
        check_numbers(config, *_where_set(ctx, opts))
        _evaluate(config, quiet=opts["quiet"])

    _guard(work)


# RunConfig field -> the click parameter that sets it, where the two names differ.
_PARAM_OF = {"k": "k_values", "grader_timeout_s": "grader_timeout", "min_time_limit_s": "min_time_limit",
             "sample_time_cap_s": "sample_time_cap"}


def _where_set(ctx: click.Context, opts: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Flag names and config files to name in a range error: (field -> flag, field -> YAML file)."""
    flags, origins = {}, {}
    config_file = ctx.meta.get("tl_eval.config_file")
    for name in NUMERIC_RULES:
        param = _PARAM_OF.get(name, name)
        if name in ("planner_max_tokens", "executor_max_tokens") and opts["max_tokens"] is not None:
            param, flags[name] = "max_tokens", "--max-tokens"
        if config_file and ctx.get_parameter_source(param) == ParameterSource.DEFAULT_MAP:
            origins[name] = config_file
    return flags, origins


def _config_from_options(opts: dict) -> RunConfig:
    # `is None`, not `or`: --max-tokens 0 must reach the range check, not fall back to the defaults.
    planner_max = opts["planner_max_tokens"] if opts["max_tokens"] is None else opts["max_tokens"]
    executor_max = opts["executor_max_tokens"] if opts["max_tokens"] is None else opts["max_tokens"]
    try:
        ks = sorted({int(k) for k in _csv(opts["k_values"])})
    except ValueError as e:
        raise ConfigError(f"--k {opts['k_values']!r} is not a list of whole numbers ({e})",
                          "give --k comma-separated whole numbers of at least 1, e.g. 1,5,10") from e
    return RunConfig(
        tasks=_csv(opts["tasks"]), planner=opts["planner"], executor=opts["executor"],
        frozen_executor=opts["frozen_executor"], n_samples=opts["n_samples"], temperature=opts["temperature"],
        top_p=opts["top_p"], planner_max_tokens=planner_max, executor_max_tokens=executor_max, seed=opts["seed"],
        limit=opts["limit"], conditions=_csv(opts["conditions"]), k=ks, data_dir=opts["data_dir"],
        output=opts["output"], run_id=opts["run_id"], cache="off" if opts["no_cache"] else opts["cache_path"],
        math_pipeline=opts["math_pipeline"], grader_timeout_s=opts["grader_timeout"],
        sandbox_tier=opts["sandbox_tier"], allow_unsandboxed=opts["allow_unsandboxed"],
        time_limit_factor=opts["time_limit_factor"], min_time_limit_s=opts["min_time_limit"],
        sample_time_cap_s=opts["sample_time_cap"], memory_mb=opts["memory_mb"], workers=opts["workers"],
        rm=opts["rm_dir"], paraphraser=opts["paraphraser"], planner_format=opts["planner_format"])


def _guard(fn):
    """Run fn; user errors print a message and exit 2, Ctrl-C exits 130 with how to resume."""
    try:
        return fn()
    except TLEvalError as e:
        fail(e)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished generations are cached; run the same command again to resume.", err=True)
        sys.exit(130)


def _evaluate(config: RunConfig, quiet: bool) -> None:
    from tl_eval.harness.evaluate import prepare, run
    from tl_eval.harness.summary import print_summary

    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    prep = prepare(config)
    log("tasks: " + ", ".join(f"{t.name} ({len(p)} of {n})" for t, p, n in prep.tasks)
        + f" · conditions: {', '.join(map(str, prep.conditions))}")
    run_dir, result = run(prep, show_progress=not quiet, log=log)
    print_summary(result, str(run_dir))


@main.command("sandbox")
@click.option("--tier", "tier_names", default="bwrap,unshare,seccomp", show_default=True, metavar="LIST",
              help="Tiers to probe.")
def sandbox_cmd(tier_names: str) -> None:
    """Probe each sandbox tier on this machine and list which isolation promises it keeps (docs/sandbox.md)."""
    from tl_eval.harness.errors import SandboxUnavailable
    from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits

    import logging

    from rich.console import Console
    from rich.table import Table

    promises = {"answer_key_unreachable_in_memory": "no answer key in memory", "filesystem_allowlist":
                "file-system allowlist", "private_uid": "private uid", "namespaces": "namespaces",
                "memory_limit": "memory limit", "job_dir_size_limit": "job dir size limit",
                "jobs_independent": "jobs independent", "proc_hidden": "/proc hidden"}
    table = Table(title="sandbox tiers on this machine")
    for col in ("tier", *promises.values(), "gaps"):
        table.add_column(col)
    logging.getLogger("tl_eval.harness.verify.code").setLevel(logging.ERROR)  # the gaps column says it once
    for tier in _csv(tier_names):
        try:
            with CodeVerifier(SandboxLimits(workers=1), tier=tier) as v:
                iso, gaps = v.isolation, [w for w in v.warnings if not w.startswith("sandbox isolation: ")]
        except SandboxUnavailable as e:
            table.add_row(tier, *["—"] * len(promises), f"unavailable: {e.problem}")
            continue
        cells = [iso[p] if not isinstance(iso[p], bool) else ("yes" if iso[p] else "NO") for p in promises]
        table.add_row(tier, *cells, "; ".join(gaps))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@main.command("models")
def models_cmd() -> None:
    """List the builtin models and whether they are ready to run."""
    from tl_eval.harness.models import list_builtin

    for m in list_builtin():
        state = "ready" if m.get("ready") else f"not ready: {m.get('why', '?')}"
        click.echo(f"builtin:{m['name']:<32} {m.get('backend', ''):<10} {state}  {m.get('path') or ''}")


@main.command("tasks")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="TL_EVAL_DATA_DIR")
def tasks_cmd(data_dir: str | None) -> None:
    """List the tasks with their sizes and where each one loads from."""
    from tl_eval.harness.task import get_task, task_names

    directory = Path(data_dir) if data_dir else default_data_dir()
    for name in task_names():
        if name == "custom":
            click.echo(f"{'custom':<16} {'code|math':<5} {'':>6}  a YAML spec path: --tasks path/to/spec.yaml")
            continue
        task = get_task(name)
        try:
            size = task.size(directory)
        except TLEvalError:
            size = None
        click.echo(f"{name:<16} {task.task_type:<5} {size if size is not None else '?':>6}  {task.source(directory)}")


def _lookup(problems, task_id) -> object | None:
    by_id = {p.problem_id.lower(): p for p in problems}
    key = str(task_id).lower()
    for cand in (key, key.replace("mbpp/", ""), f"{problems[0].task}/{key}" if problems else key):
        if cand in by_id:
            return by_id[cand]
    return None


@main.command("verify")
@click.option("--task", "task_name", required=True, help="Task whose problems the samples answer.")
@click.option("--samples", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL: task_id plus solution (full program) or completion (code: appended to the prompt; "
                   "math: the executor's text).")
@click.option("--out", type=click.Path(dir_okay=False), help="Per-sample verdicts (default: SAMPLES_verdicts.jsonl).")
@click.option("--k", "k_values", default="1,10,100", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="TL_EVAL_DATA_DIR")
@click.option("--sandbox-tier", type=click.Choice(["auto", "bwrap", "unshare", "seccomp", "none"]), default="auto",
              envvar="TL_EVAL_SANDBOX_TIER")
@click.option("--allow-unsandboxed", is_flag=True)
@click.option("--math-pipeline", type=click.Choice(list(PIPELINES)), default="strict", show_default=True,
              help="Answer extraction for math tasks (as for an evaluation).")
def verify_cmd(task_name, samples, out, k_values, data_dir, sandbox_tier, allow_unsandboxed, math_pipeline) -> None:
    """Grade pre-generated outputs without any model (evalplus samples schema) and print pass@k."""
    import numpy as np

    from tl_eval.harness.evaluate import load_task_problems
    from tl_eval.harness.metrics.passk import pass_at_k_mean

    def work():
        verifier = VerifierSettings(sandbox_tier=sandbox_tier, allow_unsandboxed=allow_unsandboxed,
                                    math_pipeline=math_pipeline)
        (task, problems, _), = load_task_problems([task_name], verifier, data_dir)
        rows, chosen, artifacts, outputs = read_jsonl(Path(samples)), [], [], []
        for n, row in enumerate(rows, 1):
            if "task_id" not in row or not ({"solution", "completion"} & set(row)):
                raise DataError(f"{samples}: row {n} needs task_id and solution or completion",
                                "write rows like {\"task_id\": \"HumanEval/0\", \"solution\": \"def ...\"}")
            problem = _lookup(problems, row["task_id"])
            if problem is None:
                raise DataError(f"{samples}: row {n}: task_id {row['task_id']!r} is not a problem of {task_name}",
                                f"use ids as `tl-eval` writes them, e.g. {problems[0].problem_id!r}")
            text = row.get("solution")
            if text is None:
                text = task.completion_solution(problem, row["completion"])
            chosen.append(problem)
            outputs.append(text)
            artifacts.append(task.solution_artifact(problem, text))
        try:
            verdicts = task.verify(chosen, artifacts, outputs)
        finally:
            task.close()
        target = Path(out) if out else Path(samples).with_name(Path(samples).stem + "_verdicts.jsonl")
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for p, v in zip(chosen, verdicts):
            counts[p.problem_id][0] += 1
            counts[p.problem_id][1] += v.passed
        atomic_write_text(target, "".join(
            json.dumps({"task_id": row["task_id"], "problem_id": p.problem_id, **v.to_dict()}) + "\n"
            for row, p, v in zip(rows, chosen, verdicts)), flag="--out FILE")
        ns = np.array([c[0] for c in counts.values()])
        cs = np.array([c[1] for c in counts.values()])
        statuses = defaultdict(int)
        for v in verdicts:
            statuses[v.status] += 1
        click.echo(f"{task_name}: {len(verdicts)} samples over {len(counts)} problems · "
                   + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        for k in sorted({int(x) for x in _csv(k_values)}):
            if k <= ns.min():
                click.echo(f"pass@{k}: {100 * pass_at_k_mean(ns, cs, k):.2f}")
        click.echo(f"verdicts: {target}")

    _guard(work)


@main.command("selfcheck")
@click.option("--task", "task_names", required=True, help="Comma-separated tasks.")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="TL_EVAL_DATA_DIR")
@click.option("--limit", type=int)
@click.option("--sandbox-tier", type=click.Choice(["auto", "bwrap", "unshare", "seccomp", "none"]), default="auto",
              envvar="TL_EVAL_SANDBOX_TIER")
@click.option("--allow-unsandboxed", is_flag=True)
def selfcheck_cmd(task_names, data_dir, limit, sandbox_tier, allow_unsandboxed) -> None:
    """Run every reference solution / answer through the verifier and list the ones that fail."""
    from tl_eval.harness.evaluate import load_task_problems

    def work():
        verifier = VerifierSettings(sandbox_tier=sandbox_tier, allow_unsandboxed=allow_unsandboxed)
        failed_any = False
        for task, problems, _ in load_task_problems(_csv(task_names), verifier, data_dir, limit):
            refs = [task.reference_artifact(p) for p in problems]
            outputs = [r or "" for r in refs]
            artifacts = [task.solution_artifact(p, r or "") for p, r in zip(problems, refs)]
            try:
                verdicts = task.verify(problems, artifacts, outputs)
                note = task.verifier_note()
            finally:
                task.close()
            bad = [(p, v) for p, v in zip(problems, verdicts) if not v.passed]
            click.echo(f"{task.name}: {len(problems) - len(bad)}/{len(problems)} references pass"
                       + (f" ({note})" if note else ""))
            for p, v in bad:
                why = v.failing_test or v.details.get("reason") or (v.stderr.strip().splitlines() or [""])[-1]
                click.echo(f"  FAIL {p.problem_id}: {v.status}: {why}"[:300])
            failed_any |= bool(bad)
        if failed_any:
            click.echo("some references failed (listed above)")

    _guard(work)


if __name__ == "__main__":
    main()
