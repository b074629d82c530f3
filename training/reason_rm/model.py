"""The Reason RM: a decoder backbone, last-token pooling, five 5-way rubric heads and a total head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

N_DIMS = 5
N_LABELS = 5  # rubric labels 0..4


@dataclass
class RMOutput:
    rubric_logits: torch.Tensor  # [B, N_DIMS, N_LABELS]
    total_logit: torch.Tensor  # [B]

    @property
    def score(self) -> torch.Tensor:
        return rm_score(self.rubric_logits, self.total_logit)


def rm_score(rubric_logits: torch.Tensor, total_logit: torch.Tensor) -> torch.Tensor:
    """score = 0.5·Σ_dims 0.2·E[dim]/4 + 0.5·sigmoid(total), in [0, 1] (DESIGN.md)."""
    labels = torch.arange(N_LABELS, dtype=rubric_logits.dtype, device=rubric_logits.device)
    expected = (rubric_logits.softmax(-1) * labels).sum(-1)  # [B, N_DIMS], each in [0, 4]
    return 0.5 * (0.2 * expected / (N_LABELS - 1)).sum(-1) + 0.5 * torch.sigmoid(total_logit)


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state of each row's last real token (inputs are right-padded)."""
    last = attention_mask.long().sum(1) - 1
    return hidden[torch.arange(hidden.size(0), device=hidden.device), last.clamp(min=0)]


class ReasonRM(nn.Module):
    """Backbone + heads. The rubric heads are shared by code and math: position i is the i-th dim of either."""

    def __init__(self, backbone: nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.rubric_head = nn.Linear(hidden_size, N_DIMS * N_LABELS)
        self.total_head = nn.Linear(hidden_size, 1)
        for head in (self.rubric_head, self.total_head):
            nn.init.normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)

    def heads(self) -> nn.ModuleDict:
        return nn.ModuleDict({"rubric_head": self.rubric_head, "total_head": self.total_head})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> RMOutput:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head_forward(hidden, attention_mask)

    def head_forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> RMOutput:
        """Pooling and heads over the backbone's last hidden states."""
        pooled = last_token_pool(hidden, attention_mask).to(self.rubric_head.weight.dtype)
        logits = self.rubric_head(pooled).view(-1, N_DIMS, N_LABELS)
        return RMOutput(logits, self.total_head(pooled).squeeze(-1))


@dataclass
class LossParts:
    loss: torch.Tensor
    ce: float
    huber: float
    pairwise: float


PAIR_TEMPERATURE = 0.1  # scores live in [0, 1]; without a temperature the pairwise gradient is too flat


def rm_loss(out: RMOutput, labels: torch.Tensor, totals: torch.Tensor,
            pairs: torch.Tensor | None) -> LossParts:
    """CE over the five dims + 0.5 × Huber(sigmoid(total), target) + 0.7 × pairwise positive-over-negative.

    `labels` [B, 5] ints 0..4, `totals` [B] in [0, 1], `pairs` [P, 2] indices (positive, negative) into the batch.
    """
    ce = F.cross_entropy(out.rubric_logits.reshape(-1, N_LABELS), labels.reshape(-1))
    huber = F.huber_loss(torch.sigmoid(out.total_logit), totals, delta=1.0)
    if pairs is not None and len(pairs):
        s = out.score
        pair = -F.logsigmoid((s[pairs[:, 0]] - s[pairs[:, 1]]) / PAIR_TEMPERATURE).mean()
    else:
        pair = torch.zeros((), device=ce.device)
    loss = ce + 0.5 * huber + 0.7 * pair
    return LossParts(loss, float(ce.detach()), float(huber.detach()), float(pair.detach()))
