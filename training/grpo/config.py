"""The training configuration: YAML file, then command-line overrides; validated before anything loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tl_eval.harness.config import DEFAULT_FROZEN, PLANNER_FORMATS, SamplingSettings, VerifierSettings
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.types import SamplingParams

MODES = ("exec-only", "tracelift")


@dataclass
class TrainConfig:
    """Everything one `tl-eval train` run depends on. `trl` holds extra GRPOConfig arguments, passed as-is."""

    mode: str = "exec-only"
    task: str = "gsm8k"
    planner: str = "builtin:smollm2-135m-instruct"  # also random:tiny, hf:PATH, or a model directory
    executor: str = "frozen"
    frozen_executor: str = DEFAULT_FROZEN
    executor_options: dict[str, Any] = field(default_factory=dict)  # backend overrides, e.g. n_threads, concurrency
    output: str = "runs/train/planner"
    rm: str | None = None
    data_dir: str | None = None
    split: str = "train"
    offset: int = 0
    limit: int | None = 64  # training problems: a contiguous slice [offset, offset+limit)
    # With select_alone [low, high]: screen [offset, offset+pool) with the executor alone (K samples each) and
    # train on the first `limit` problems whose success rate lies in [low, high].
    select_alone: list[float] | None = None
    pool: int | None = None
    easiest_first: bool = False  # screen the pool in order of reference-solution length, shortest first
    seed: int = SamplingSettings.seed  # LoRA init, data order, planner samples
    # Executor sampling during training (TraceLift samples the executor at 0.5); K samples per uplift mean. Its seed
    # is apart from `seed`, so that runs of several seeds screen the same problems and share executor-alone samples.
    executor_seed: int = SamplingSettings.seed
    k: int = 3
    executor_temperature: float = 0.5
    executor_top_p: float = 1.0
    executor_max_tokens: int = 256
    cache: str | None = None  # None: the shared default cache; "off": in memory
    # the evaluation's verifier settings (harness.config.VerifierSettings), so that verdict keys match
    math_pipeline: str = VerifierSettings.math_pipeline
    grader_timeout_s: float = VerifierSettings.grader_timeout_s
    sandbox_tier: str = VerifierSettings.sandbox_tier
    allow_unsandboxed: bool = VerifierSettings.allow_unsandboxed
    # GRPO
    max_steps: int = 30
    num_generations: int = 4
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    beta: float = 0.0
    temperature: float = 1.0  # planner sampling
    top_p: float = 1.0
    max_completion_length: int = 128  # the planner's token budget, in training and in the evaluation of its checkpoint
    planner_format: str = SamplingSettings.planner_format  # the evaluation's --planner-format (tagged or free)
    format_weight: float = 0.0  # > 0: add training.rewards.FormatReward with this weight (TRL reward_weights)
    save_steps: int = 10
    save_total_limit: int | None = 2
    logging_steps: int = 1
    # LoRA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = "all-linear"
    # Generation and hardware
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    bf16: bool = False
    gradient_checkpointing: bool = False
    trl: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown training mode {self.mode!r}", f"use --mode {' or --mode '.join(MODES)}")
        if self.mode == "tracelift" and not self.rm:
            raise ConfigError("--mode tracelift needs a Reason RM",
                              "pass --rm RM_DIR (a directory written by `tl-eval train-rm`)")
        if self.rm and not Path(self.rm).is_dir():
            raise ConfigError(f"--rm {self.rm}: no such directory", "pass a directory written by `tl-eval train-rm`")
        for name in ("k", "max_steps", "num_generations", "per_device_train_batch_size", "max_completion_length",
                     "executor_max_tokens", "lora_r", "save_steps", "logging_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations must be at least 2 (GRPO compares completions of one prompt), "
                              f"got {self.num_generations}", "set num_generations: 4")
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if batch % self.num_generations:
            raise ConfigError(
                f"per_device_train_batch_size × gradient_accumulation_steps ({batch}) is not a multiple of "
                f"num_generations ({self.num_generations})",
                "make the batch a multiple of num_generations, e.g. per_device_train_batch_size: 4 with num_generations: 4")
        if self.planner_format not in PLANNER_FORMATS:
            raise ConfigError(f"unknown planner_format {self.planner_format!r}",
                              f"use one of {', '.join(PLANNER_FORMATS)} (the evaluation's --planner-format)")
        if self.format_weight < 0:
            raise ConfigError(f"format_weight must be at least 0, got {self.format_weight}", "set format_weight: 0.5")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")
        if self.select_alone is not None:
            lo_hi = self.select_alone
            if not (isinstance(lo_hi, (list, tuple)) and len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1] <= 1):
                raise ConfigError(f"select_alone must be [low, high] with 0 <= low <= high <= 1, got {lo_hi!r}",
                                  "e.g. select_alone: [0.3, 0.7]")
            if not self.pool or self.pool < 1:
                raise ConfigError("select_alone needs pool (how many problems to screen)", "e.g. pool: 200")
        if self.offset < 0:
            raise ConfigError(f"offset must be at least 0, got {self.offset}")

    def executor_sampling(self) -> SamplingParams:
        """The executor's decoding while training (the evaluation's model, with the trainer's own values)."""
        return SamplingSettings(temperature=self.executor_temperature, top_p=self.executor_top_p,
                                executor_max_tokens=self.executor_max_tokens, seed=self.executor_seed).executor()

    def planner_settings(self) -> SamplingSettings:
        """The planner's turn as the evaluation of the checkpoint will ask for it (format and token budget), with
        the trainer's sampling."""
        return SamplingSettings(temperature=self.temperature, top_p=self.top_p,
                                planner_max_tokens=self.max_completion_length, seed=self.seed,
                                planner_format=self.planner_format)

    def to_dict(self) -> dict:
        return asdict(self)


def _known(data: dict, where: str) -> dict:
    names = {f.name for f in fields(TrainConfig)}
    normalized = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(normalized) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}",
                          "use TrainConfig's keys (see docs/training.md); put other GRPOConfig arguments under `trl:`")
    return normalized


def load_train_config(path: str | Path | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from an optional YAML file, with non-None `overrides` (the command-line flags) winning."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist", "pass --config training/configs/cpu-small.yaml or a file of yours")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p} is not valid YAML: {e}", "fix the file") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p} must hold a mapping of keys to values", "see training/configs/cpu-small.yaml")
        data = _known(loaded, str(p))
    data.update(_known({k: v for k, v in overrides.items() if v is not None}, "options"))
    try:
        cfg = TrainConfig(**data)
    except TypeError as e:
        raise ConfigError(f"bad training config: {e}", "check the keys against docs/training.md") from None
    cfg.validate()
    return cfg
