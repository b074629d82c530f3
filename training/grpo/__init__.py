"""GRPO planner training against a frozen executor: config, dataset, TRL wiring, logging and checkpoints."""

from tl_eval.training.grpo.config import TrainConfig, load_train_config
from tl_eval.training.grpo.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_train_config", "train"]
