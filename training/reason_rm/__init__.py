"""The rubric-based Reason RM: model, training, and scoring of reasoning traces."""

from tl_eval.training.reason_rm.scorer import RMScorer, load_scorer

__all__ = ["RMScorer", "load_scorer"]
