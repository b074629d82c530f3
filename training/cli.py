"""Click commands of the trainer side: build-groups, train-rm, score (registered into `tl-eval`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tl_eval.harness.errors import TLEvalError, fail




@click.command("build-groups")
@click.option("--task", type=click.Choice(["gsm8k", "mbpp"]), required=True, help="Seed benchmark.")
@click.option("--split", default="train", show_default=True, help="Seed split (MBPP train = task ids 601-974).")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Output JSONL.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with gsm8k/ and mbpp/ (default: $TL_EVAL_DATA_DIR).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N seed problems.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the perturbations.")
@click.option("--writer", default=None, metavar="SPEC",
              help="Model that writes MBPP reference plans and wrong_strategy negatives.")
def build_groups(task, split, out, data_dir, limit, seed, writer):
    """Write TraceLift-Groups rows (reference trace + labelled negatives) and report counts per kind."""
    from tl_eval.training.groups.build import build_groups as build
    from tl_eval.training.groups.schema import write_groups

    try:
        gen = None
        if writer:
            from tl_eval.training.groups.writer import open_writer

            gen = open_writer(writer)
        rows, report = build(task, split, data_dir=data_dir, limit=limit, seed=seed, writer=gen)
        write_groups(rows, out)
    except TLEvalError as exc:
        fail(exc)
    click.echo(f"wrote {out}: {report.summary()}")
    for kind, n in sorted(report.per_kind.items()):
        click.echo(f"  {kind:16s} {n:6d}  (not applicable to {report.not_applicable.get(kind, 0)} seeds)")


@click.command("train-rm")
@click.option("--groups", "groups", type=click.Path(dir_okay=False), required=True, multiple=True,
              help="Groups JSONL (ours or published TraceLift-Groups); repeat to mix files.")
@click.option("--base", default="builtin:smollm2-135m-instruct", show_default=True, metavar="SPEC",
              help="Backbone: builtin:smollm2-135m-instruct, hf:PATH or a local HF directory (random:tiny for smoke tests).")
@click.option("--output", type=click.Path(file_okay=False), required=True, help="RM directory (resumes if it has checkpoints).")
@click.option("--max-length", type=click.IntRange(min=96), default=256, show_default=True)
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after N steps (overrides --epochs).")
@click.option("--groups-per-batch", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--negatives-per-group", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Backbone learning rate.")
@click.option("--head-lr", type=float, default=1e-3, show_default=True)
@click.option("--lora-r", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lora-layers", type=click.IntRange(min=1), default=None,
              help="LoRA on the last N decoder layers only (cheaper steps on a CPU); default: all layers.")
@click.option("--no-cache-frozen", is_flag=True,
              help="With --lora-layers: recompute the frozen layers every step instead of once per trace.")
@click.option("--full/--lora", "full", default=None, help="Full fine-tuning or LoRA (default: full only for tiny backbones).")
@click.option("--heldout", type=float, default=0.1, show_default=True, help="Fraction of groups held out for metrics.")
@click.option("--max-groups", type=click.IntRange(min=1), default=None, help="Use only the first N groups.")
@click.option("--save-every", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train_rm(groups, base, output, max_length, epochs, max_steps, groups_per_batch, negatives_per_group, lr, head_lr,
             lora_r, lora_layers, no_cache_frozen, full, heldout, max_groups, save_every, seed, device, no_progress):
    """Train the Reason RM and report held-out pair/group accuracy, total MAE and per-kind accuracy."""
    from tl_eval.training.reason_rm.train import TrainConfig, train_rm as train

    try:
        path = _merge_groups(groups, output)
        cfg = TrainConfig(groups=path, base=base, output=output, max_length=max_length, epochs=epochs,
                          max_steps=max_steps, groups_per_batch=groups_per_batch,
                          negatives_per_group=negatives_per_group, lr=lr, head_lr=head_lr, lora_r=lora_r,
                          lora_alpha=2 * lora_r, lora_layers=lora_layers,
                          cache_frozen=not no_cache_frozen, full=full, heldout=heldout, max_groups=max_groups,
                          save_every=save_every, seed=seed, progress=not no_progress)
        result = train(cfg, device=device)
    except TLEvalError as exc:
        fail(exc)
    click.echo(f"saved the RM to {result.output} ({result.steps} steps, {result.seconds_per_step:.2f} s/step)")
    _print_metrics("held-out", result.heldout)
    for name, m in result.baselines.items():
        _print_metrics(f"baseline {name}", m)


def _merge_groups(paths: tuple[str, ...], output: str) -> str:
    if len(paths) == 1:
        return paths[0]
    from tl_eval.training.groups.schema import read_groups, write_groups

    rows = [r for p in paths for r in read_groups(p)]  # validates every file first
    merged = Path(output) / "groups.merged.jsonl"
    write_groups(rows, merged)
    return str(merged)


def _print_metrics(label: str, m: dict) -> None:
    if not m:
        click.echo(f"{label}: no held-out groups")
        return
    mae = "n/a" if m["total_mae"] is None else f"{m['total_mae']:.3f}"
    click.echo(f"{label}: posneg_pair_acc={m['posneg_pair_acc']:.3f} (n={m['posneg_pair_count']}) "
               f"posneg_group_acc={m['posneg_group_acc']:.3f} (n={m['posneg_group_count']}) total_mae={mae}")
    click.echo("  per kind: " + ", ".join(f"{k}={v['acc']:.2f}/{v['count']}" for k, v in m["per_kind_pair_acc"].items()))


@click.command("score")
@click.option("--rm", "rm_dir", type=click.Path(file_okay=False), required=True, help="Reason RM directory.")
@click.option("--samples", type=click.Path(dir_okay=False), required=True,
              help="A run's samples_<task>.jsonl (or lines with problem_id, trace, prompt, task_type).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Benchmark data for the problem texts (default: the run's recorded data folder).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write scores JSONL here (default: stdout).")
@click.option("--device", default=None, help="cpu, cuda ... (default: cuda when available).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
def score(rm_dir, samples, data_dir, out, device, batch_size):
    """Score the traces of a samples file with a Reason RM, without generating anything."""
    from tl_eval.training.reason_rm.samples import read_samples
    from tl_eval.training.reason_rm.scorer import load_scorer

    try:
        items = read_samples(samples, data_dir)
        scorer = load_scorer(rm_dir, device=device, batch_size=batch_size)
    except TLEvalError as exc:
        fail(exc)
    scores: dict[int, float] = {}
    from tl_eval.training.reason_rm.samples import by_task_type

    for tt, sub in by_task_type(items).items():
        for s, v in zip(sub, scorer.score([s.trace for s in sub], [s.prompt for s in sub], tt)):
            scores[s.line] = v
    lines = [json.dumps({"problem_id": s.problem_id, "sample_index": s.sample_index, "task_type": s.task_type,
                         "rm_score": round(scores[s.line], 6)}) for s in items]
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("".join(line + "\n" for line in lines))
        mean = sum(scores.values()) / len(scores) if scores else float("nan")
        click.echo(f"scored {len(lines)} traces; mean rm_score {mean:.4f}; wrote {out}")
    else:
        click.echo("\n".join(lines))


COMMANDS = [build_groups, train_rm, score]
