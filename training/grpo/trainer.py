"""`train`: TRL's GRPOTrainer with LoRA, rewarded by the frozen executor through the harness's backends and cache."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.config import VerifierSettings, default_data_dir, resolve_cache
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.pipeline.cache import Cache
from tl_eval.harness.task import Task, get_task
from tl_eval.training.executor_client import ExecutorClient
from tl_eval.training.grpo.callbacks import (CheckpointExtras, MetricsLogger, TurnLog, read_metrics,
                                              truncate_metrics, write_extras)
from tl_eval.training.grpo.curve import plot_reward_curve, problem_paired_gain, reward_gain
from tl_eval.training.grpo.config import TrainConfig
from tl_eval.training.grpo.dataset import build_dataset, select_by_executor_alone, select_problems
from tl_eval.training.grpo.planner import base_dir, load_planner
from tl_eval.training.grpo import turn, vllm_sync
from tl_eval.training.rewards import FormatReward, PlannerReward


@dataclass
class TrainResult:
    """Where the final checkpoint is, and what the run cost."""

    output: Path
    steps: int
    metrics_path: Path
    counters: dict
    seconds: float
    reward: PlannerReward
    client: ExecutorClient
    model: object  # the trained PeftModel, in memory


def configure_task(task: Task, cfg: TrainConfig) -> None:
    """The verifier options the evaluation would use, so that verdict cache keys match it."""
    try:
        task.configure(**VerifierSettings.of(cfg).task_options())
    except ImportError:  # the sandbox package is not importable: math tasks need only the grader options
        if task.uses_sandbox:
            raise
        task.configure(math_pipeline=cfg.math_pipeline, grader_timeout_s=cfg.grader_timeout_s)


def cache_path(cfg: TrainConfig) -> Path | None:
    return resolve_cache(cfg.cache)


def _checkpoint_to_resume(output: Path, resume: bool) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(output)) if output.is_dir() else None
    if resume and last is None:
        raise ConfigError(f"--resume given but {output} holds no checkpoint-N folder",
                          "drop --resume to start a new run, or pass the --output of the killed run")
    if not resume and (last is not None or (output / "adapter_config.json").is_file()):
        raise ConfigError(f"{output} already holds a training run",
                          "pass --resume to continue it, or choose another --output")
    return last


def _grpo_args(cfg: TrainConfig, output: Path, show_progress: bool, generation_kwargs: dict):
    from trl import GRPOConfig

    args = dict(
        output_dir=str(output), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature, top_p=cfg.top_p,
        learning_rate=cfg.learning_rate, beta=cfg.beta, logging_steps=cfg.logging_steps, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, seed=cfg.seed, report_to="none", use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode, bf16=cfg.bf16, gradient_checkpointing=cfg.gradient_checkpointing,
        disable_tqdm=not show_progress, log_completions=False,
    )
    if generation_kwargs:
        args["generation_kwargs"] = generation_kwargs
    if cfg.format_weight:
        args["reward_weights"] = [1.0, cfg.format_weight]  # the order of reward_funcs in train()
    args.update({k: v for k, v in cfg.trl.items() if k != "generation_kwargs"})
    if cfg.trl.get("generation_kwargs"):
        args["generation_kwargs"] = {**generation_kwargs, **cfg.trl["generation_kwargs"]}
    try:
        return GRPOConfig(**args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"TRL rejected the GRPO settings: {e}", "fix the config (keys under `trl:` go to GRPOConfig)") from None


def train(cfg: TrainConfig, *, resume: bool = False, scorer=None, executor=None, show_progress: bool = True,
          log=print) -> TrainResult:
    """Train a LoRA planner with GRPO; `scorer` and `executor` replace the RM and the executor spec (tests)."""
    from peft import LoraConfig
    from trl import GRPOTrainer

    cfg.validate()
    output = Path(cfg.output)
    last = _checkpoint_to_resume(output, resume)
    task = get_task(cfg.task)
    configure_task(task, cfg)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    problems = select_problems(task.load(data_dir, cfg.split), cfg.offset,
                               cfg.pool if cfg.select_alone is not None else cfg.limit)
    if executor is None:
        from tl_eval.harness.models import load_generator, preflight

        preflight(cfg.executor, frozen=cfg.frozen_executor)
        executor = load_generator(cfg.executor, frozen=cfg.frozen_executor, **cfg.executor_options)
    if cfg.mode == "tracelift" and scorer is None:
        from tl_eval.training.reason_rm import load_scorer

        scorer = load_scorer(cfg.rm)
    output.mkdir(parents=True, exist_ok=True)
    metrics_path, turns_path = output / "metrics.jsonl", output / "turns.jsonl"
    for log_file in (metrics_path, turns_path):  # a resumed run keeps its logs up to its checkpoint
        if last is not None:
            truncate_metrics(log_file, int(Path(last).name.rsplit("-", 1)[1]))
        else:  # what a run killed before its first checkpoint logged
            log_file.unlink(missing_ok=True)
    cache = Cache(cache_path(cfg))
    client = ExecutorClient(task, executor, cache, cfg.executor_sampling(), cfg.k)
    screened = None
    if cfg.select_alone is not None:
        if cfg.easiest_first:  # a shorter reference solution is, as a rule, an easier problem
            problems = sorted(problems, key=lambda p: len(p.reference or p.prompt))
        problems, screened = select_by_executor_alone(client, problems, *cfg.select_alone, cfg.limit, log=log)
    base = base_dir(cfg.planner, output, cfg.seed)
    model, tok = load_planner(base)
    turns = turn.training_turns(task, problems, cfg.planner_settings())
    decoding = turn.decoding(turns)
    reader = turn.TurnReader(decoding)
    reward = PlannerReward(cfg.mode, client, {p.problem_id: p for p in problems}, reader, scorer,
                           on_turns=TurnLog(turns_path))
    config_json = {"train_config": cfg.to_dict(), "base_model": str(base), "executor_fingerprint": executor.fingerprint(),
                   "problem_ids": [p.problem_id for p in problems]}
    if screened is not None:
        config_json["executor_alone_rates"] = screened
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
    with vllm_sync.constructing(cfg):
        trainer = GRPOTrainer(
            model=model, reward_funcs=[reward] + ([FormatReward(reader)] if cfg.format_weight else []),
            args=_grpo_args(cfg, output, show_progress, turn.generation_kwargs(decoding, cfg.use_vllm)),
            train_dataset=build_dataset(problems, turn.prompt_texts(tok, turns)), processing_class=tok,
            peft_config=lora,
            callbacks=[MetricsLogger(metrics_path, client), CheckpointExtras(tok, config_json, metrics_path)],
        )
    reader.eos = set(trainer.eos_token_ids)  # what ends a completion in TRL's generation
    vllm_sync.adapt(trainer, cfg)
    if not cfg.use_vllm and decoding.sampling.stop:
        turn.pass_tokenizer_to_generate(trainer.model, tok)
    start = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=last)
        trainer.save_model(str(output))
        metrics = read_metrics(metrics_path)
        config_json["reward_gain"] = reward_gain(metrics)
        config_json["reward_gain_by_function"] = {  # the total's parts: the executor's reward, the format's
            name: reward_gain(metrics, f"rewards/{name}/mean")
            for name in [reward.__name__] + (["format"] if cfg.format_weight else [])}
        # The mode's own reward, paired on the problem (first visit against last)
        config_json["reward_gain_by_problem"] = problem_paired_gain(read_metrics(turns_path))
        plot_reward_curve(metrics, output / "reward_curve.png", f"{cfg.mode} on {cfg.task}")
        write_extras(output, tok, config_json, metrics_path)
    finally:
        task.close()
        cache.close()
        executor.close()
    seconds = time.perf_counter() - start
    gain, paired = config_json["reward_gain"], config_json["reward_gain_by_problem"]
    log(f"trained {trainer.state.global_step} steps in {seconds:.0f}s; checkpoint: {output}" + (
        f"; reward gain (last quarter − first) {gain['value']:+.3f} [{gain['ci_low']:+.3f}, {gain['ci_high']:+.3f}]"
        if gain else "") + (
        f"; {reward.__name__} reward on the same problems (last visit − first) {paired['value']:+.3f} "
        f"[{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]" if paired else ""))
    return TrainResult(output, trainer.state.global_step, metrics_path, client.counters.to_dict(), seconds, reward, client,
                       trainer.model)
