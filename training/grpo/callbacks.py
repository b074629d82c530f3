"""Trainer callbacks: the metrics.jsonl log (with executor counters) and what goes into each checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from tl_eval.training.grpo.checkpoint import TRAIN_META


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop entries logged after `last_step`, so a resumed run does not log those steps twice (metrics.jsonl
    and turns.jsonl)."""
    kept = [m for m in read_metrics(path) if m.get("step", 0) <= last_step]
    path.write_text("".join(json.dumps(m) + "\n" for m in kept))


class MetricsLogger(TrainerCallback):
    """Appends every training log (TRL's reward/length/clip metrics plus the reward parts) to metrics.jsonl."""

    def __init__(self, path: Path, client):
        self.path, self.client = path, client
        self._start = time.perf_counter()
        self._last_time, self._last_step = self._start, None
        self._last_calls = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:
            return
        now = time.perf_counter()
        counters = self.client.counters.to_dict()
        entry = {"step": state.global_step, "epoch": state.epoch, "time_s": round(now - self._start, 3), **logs,
                 **{f"executor/{k}": v for k, v in counters.items()}}
        if self._last_step is not None and state.global_step > self._last_step:
            entry["step_time_s"] = round((now - self._last_time) / (state.global_step - self._last_step), 3)
        traces = max(counters["traces"], 1)
        entry["executor/with_trace_calls_per_trace"] = counters["with_trace_calls"] / traces
        entry["executor/calls_per_trace"] = counters["calls"] / traces
        entry["executor/calls_this_log"] = counters["calls"] - self._last_calls
        self._last_calls, self._last_time, self._last_step = counters["calls"], now, state.global_step
        with self.path.open("a") as f:
            f.write(json.dumps(entry, default=float) + "\n")


class TurnLog:
    """turns.jsonl: every planner turn the trainer sampled, as the evaluation reads it, with its reward."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, step, problem_ids, turns, parts) -> None:
        with self.path.open("a") as f:
            for pid, (turn, trace), part in zip(problem_ids, turns, parts):
                f.write(json.dumps({"step": step, "problem_id": pid, "turn": turn, "compliant": trace.compliant,
                                    "reward": part.reward}) + "\n")


class CheckpointExtras(TrainerCallback):
    """Makes each checkpoint self-describing: tokenizer, training config and the metrics so far."""

    def __init__(self, tokenizer, config: dict, metrics_path: Path):
        self.tokenizer, self.config, self.metrics_path = tokenizer, config, metrics_path

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            write_extras(ckpt, self.tokenizer, self.config, self.metrics_path)


def write_extras(folder: Path, tokenizer, config: dict, metrics_path: Path) -> None:
    tokenizer.save_pretrained(folder)
    (folder / TRAIN_META).write_text(json.dumps(config, indent=2, default=str) + "\n")
    if metrics_path.is_file() and metrics_path.parent != folder:
        (folder / "metrics.jsonl").write_text(metrics_path.read_text())
