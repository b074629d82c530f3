"""Batched, gradient-free scoring of traces with a trained (or in-training) Reason RM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tl_eval.training.reason_rm.encode import encode
from tl_eval.training.reason_rm.model import ReasonRM


@dataclass
class ScoredBatch:
    scores: list[float]  # the RM score in [0, 1]
    totals: list[float]  # sigmoid(total head), the predicted normalized rubric total


class RMScorer:
    """Scores traces; `score` is what `tl-eval --rm` and the TraceLift reward call."""

    def __init__(self, rm: ReasonRM, tokenizer, max_length: int = 256, batch_size: int = 8):
        self.rm, self.tokenizer, self.max_length, self.batch_size = rm, tokenizer, max_length, batch_size

    @property
    def device(self) -> torch.device:
        return next(self.rm.parameters()).device

    @torch.no_grad()
    def score_full(self, traces: Sequence[str], problems: Sequence[str], task_type: str) -> ScoredBatch:
        if len(traces) != len(problems):
            raise ValueError(f"{len(traces)} traces but {len(problems)} problems; pass one problem per trace")
        was_training = self.rm.training
        self.rm.eval()
        scores, totals = [0.0] * len(traces), [0.0] * len(traces)
        # Length-sorted batches waste less padding.
        order = sorted(range(len(traces)), key=lambda i: len(traces[i]) + len(problems[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start: start + self.batch_size]
            batch = encode(self.tokenizer, [problems[i] for i in idx], [traces[i] or "" for i in idx],
                           task_type, self.max_length)
            out = self.rm(**{k: v.to(self.device) for k, v in batch.items()})
            for j, i in enumerate(idx):
                scores[i] = float(out.score[j])
                totals[i] = float(torch.sigmoid(out.total_logit[j]))
        self.rm.train(was_training)
        return ScoredBatch(scores, totals)

    def score(self, traces: Sequence[str], problems: Sequence[str], task_type: str) -> list[float]:
        """One RM score in [0, 1] per (trace, problem)."""
        return self.score_full(traces, problems, task_type).scores


def load_scorer(path, device=None, batch_size: int = 8) -> RMScorer:
    """An RMScorer for a saved RM directory, on `device` (CUDA when available, else CPU)."""
    from tl_eval.training.reason_rm.store import load_rm

    rm, tok, cfg = load_rm(path, device)
    return RMScorer(rm, tok, cfg.max_length, batch_size)
