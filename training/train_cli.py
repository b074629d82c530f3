"""`tl-eval train`, `tl-eval vllm-serve` and `tl-eval baselines run|list` (registered through the `tl_eval.commands`
entry point)."""

from __future__ import annotations

import json

import click

from tl_eval.harness.errors import TLEvalError, fail




@click.command("train")
@click.option("--mode", type=click.Choice(["exec-only", "tracelift"]), default=None,
              help="Reward: executor outcome only, or TraceLift (RM score x measured uplift).  [default: exec-only]")
@click.option("--planner", metavar="SPEC", default=None,
              help="Planner to train: builtin:smollm2-135m-instruct, hf:DIR, a model directory, or random:tiny.")
@click.option("--executor", metavar="SPEC", default=None, help="Frozen executor spec.  [default: frozen]")
@click.option("--frozen-executor", metavar="SPEC", default=None, envvar="TL_EVAL_FROZEN_EXECUTOR",
              help="What `frozen` resolves to.")
@click.option("--task", default=None, help="gsm8k, mbpp, humaneval, or a custom task .yaml.  [default: gsm8k]")
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Checkpoint directory.")
@click.option("--rm", "rm", type=click.Path(file_okay=False), default=None, help="Reason RM directory (tracelift).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML training config (training/configs/NAME.yaml); flags win over it.")
@click.option("--resume", is_flag=True, help="Continue a killed run from the last checkpoint in --output.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="GRPO steps.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Number of training problems.")
@click.option("--seed", type=int, default=None,
              help="Training seed: LoRA init, data order and planner samples (the executor's samples, and so the "
                   "screened problems, keep executor_seed).  [default: 1234]")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, envvar="TL_EVAL_DATA_DIR",
              help="Local benchmark data.")
@click.option("--cache", "cache", metavar="PATH", default=None, help="Generation cache (SQLite), or `off`.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(mode, planner, executor, frozen_executor, task, output, rm, config_path, resume, max_steps, limit, seed,
          data_dir, cache, quiet):
    """Train a planner with GRPO + LoRA against the frozen executor; writes an HF checkpoint directory.

    Evaluate the result with `tl-eval --planner OUTPUT --executor frozen --tasks TASK`.
    """
    from tl_eval.training.grpo import load_train_config
    from tl_eval.training.grpo import train as run_train

    try:
        cfg = load_train_config(config_path, mode=mode, planner=planner, executor=executor,
                                frozen_executor=frozen_executor, task=task, output=output, rm=rm,
                                max_steps=max_steps, limit=limit, seed=seed, data_dir=data_dir, cache=cache)
        result = run_train(cfg, resume=resume, show_progress=not quiet, log=lambda m: click.echo(m, err=True))
    except TLEvalError as e:
        fail(e)
    c = result.counters
    click.echo(f"checkpoint: {result.output}\nsteps: {result.steps}  time: {result.seconds:.0f}s  "
               f"executor calls: {c['calls']} ({c['with_trace_calls']} with trace, {c['alone_calls']} alone, "
               f"{c['cache_hits']} cache hits) for {c['traces']} traces")


@click.command("vllm-serve", context_settings={"ignore_unknown_options": True})
@click.argument("model")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED)
def vllm_serve(model, port, host, vllm_args):
    """Serve MODEL for `tl-eval train` with `vllm_mode: server`: the server `trl vllm-serve` starts.

    MODEL is a folder, a hub id, or a builtin name (its float32 copy). Further arguments go to `vllm serve`, e.g.
    `--enforce-eager --max-model-len 2048 --kv-cache-memory-bytes 1073741824` on the CPU. Unlike `trl vllm-serve`,
    it also starts on vLLM's CPU build (see docs/training.md#vllm).
    """
    import os

    from tl_eval.harness.models.spec import BUILTIN_NAMES
    from tl_eval.training.grpo.vllm_sync import serve_command

    if model.removeprefix("builtin:") in BUILTIN_NAMES:
        from tl_eval.harness.models.builtin_hf import builtin_hf_dir

        model = str(builtin_hf_dir(model.removeprefix("builtin:")))
    argv, env = serve_command(model, port, host, list(vllm_args))
    click.echo(f"serving {model} at http://{host}:{port} (training: vllm_mode: server, "
               f"trl: {{vllm_server_base_url: http://{host}:{port}}})", err=True)
    os.execve(argv[0], argv, {**os.environ, **env})


@click.group("baselines")
def baselines():
    """Leaderboard baselines: executor alone, zero-shot planner, exec-only and TraceLift planners."""


@baselines.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json):
    """Show the recipes and their recorded entries."""
    from tl_eval.training.baselines import list_entries

    try:
        rows = list_entries()
    except TLEvalError as e:
        fail(e)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<28} {'task':<10} {'system':<15} {'pair@1':>7} {'exec@1':>7} {'uplift':>7}  run_id")
    for r in rows:
        e = r["entry"]
        if e is None:
            click.echo(f"{r['name']:<28} {r['task']:<10} {r['system']:<15} {'-':>7} {'-':>7} {'-':>7}  (not run)")
            continue
        m = e["metrics"]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        click.echo(f"{r['name']:<28} {r['task']:<10} {r['system']:<15} {fmt(m.get('pair_pass@1,full')):>7} "
                   f"{fmt(m.get('exec_pass@1,none')):>7} {fmt(m.get('uplift,full')):>7}  {e['run_id']}")


@baselines.command("run")
@click.argument("name")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_cmd(name, quiet):
    """Train what is missing, evaluate, and record baselines/entries/NAME.json."""
    from tl_eval.training.baselines import run_baseline

    try:
        entry = run_baseline(name, show_progress=not quiet, log=lambda m: click.echo(m, err=True))
    except TLEvalError as e:
        fail(e)
    click.echo(json.dumps({k: entry[k] for k in ("name", "run_id", "metrics")}, indent=2))


@baselines.command("reproduce")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N problems (default: all; a subset is batched differently, so it is judged by the "
                   "near-tie noise rule, never exactly).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def reproduce_cmd(name, limit, quiet):
    """Evaluate a recorded entry again (no cache) and compare with its recorded per-problem outcomes.

    Exactly, where the machine facts recorded with the entry (CPU, instruction sets, backend build, threads, GPU)
    match this machine's and all problems run; otherwise by the near-tie noise rule (docs/training.md). Exit 1
    when the outcomes fail the rule that applies."""
    from tl_eval.training.baselines import reproduce

    try:
        rep = reproduce(name, limit, show_progress=not quiet, log=lambda m: click.echo(m, err=True))
    except TLEvalError as e:
        fail(e)
    for pid, (was, now) in rep.differ.items():
        click.echo(f"{name}: {pid}: recorded {was}, now {now}")
    click.echo("\n".join(rep.summary()))
    if not rep.ok:
        raise SystemExit(1)


COMMANDS = [train, vllm_serve, baselines]
