"""Run the frozen bottom layers of the backbone once per trace and train only the layers above.

With LoRA on the top N layers, every layer below is frozen, so its output for a given input never changes.
Caching it turns each training step (and each evaluation of the same traces) into a pass through N layers,
which is what makes a real run fit a shared 2-core CPU. Exact, not an approximation: the top layers see the
same hidden states, positions and mask as in one full forward.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from tl_eval.training.reason_rm.encode import encode
from tl_eval.training.reason_rm.model import ReasonRM, RMOutput


def _decoder(rm: ReasonRM):
    bb = rm.backbone
    return bb.get_base_model() if hasattr(bb, "get_base_model") else bb


def split_index(rm: ReasonRM) -> int | None:
    """Index of the lowest decoder layer with trainable weights, or None when caching does not apply."""
    dec = _decoder(rm)
    layers, norm = getattr(dec, "layers", None), getattr(dec, "norm", None)
    if not isinstance(layers, nn.ModuleList) or norm is None or not hasattr(dec, "embed_tokens"):
        return None  # a decoder laid out differently (GPT-2 style names): train without the cache
    if any(p.requires_grad for p in dec.embed_tokens.parameters()):
        return None
    for i, layer in enumerate(layers):
        if any(p.requires_grad for p in layer.parameters()):
            return i if i > 0 else None
    return None


@contextmanager
def _only_layers(dec, lo: int, hi: int | None, keep_norm: bool):
    layers, norm = dec.layers, dec.norm
    dec.layers = nn.ModuleList(list(layers)[lo:hi])
    if not keep_norm:
        dec.norm = nn.Identity()
    try:
        yield dec
    finally:
        dec.layers, dec.norm = layers, norm


class FrozenCache:
    """Hidden states after the frozen layers, memoized by (task_type, problem, trace)."""

    def __init__(self, rm: ReasonRM, tokenizer, max_length: int, split: int, batch_size: int = 8):
        self.rm, self.tok, self.max_length, self.split, self.batch_size = rm, tokenizer, max_length, split, batch_size
        self.store: dict[tuple[str, str, str], torch.Tensor] = {}

    def ensure(self, items: list[tuple[str, str, str]], progress=None) -> None:
        """Compute the bottom states of every (task_type, problem, trace) not cached yet."""
        missing = sorted({it for it in items if it not in self.store}, key=lambda it: (it[0], len(it[1]) + len(it[2])))
        dec = _decoder(self.rm)
        device = next(self.rm.parameters()).device
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start: start + self.batch_size]
            for tt in sorted({c[0] for c in chunk}):
                sub = [c for c in chunk if c[0] == tt]
                batch = encode(self.tok, [c[1] for c in sub], [c[2] for c in sub], tt, self.max_length)
                with torch.no_grad(), _only_layers(dec, 0, self.split, keep_norm=False):
                    h = dec(input_ids=batch["input_ids"].to(device),
                            attention_mask=batch["attention_mask"].to(device)).last_hidden_state
                for j, c in enumerate(sub):
                    n = int(batch["attention_mask"][j].sum())
                    self.store[c] = h[j, :n].cpu()
            if progress is not None:
                progress.update(len(chunk))

    def forward(self, items: list[tuple[str, str, str]]) -> RMOutput:
        """The RM's output for cached items: top layers, final norm, pooling and heads."""
        self.ensure(items)
        device = next(self.rm.parameters()).device
        states = [self.store[it] for it in items]
        width = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), width, states[0].shape[1], dtype=torch.float32, device=device)
        mask = torch.zeros(len(states), width, dtype=torch.long, device=device)
        for i, s in enumerate(states):
            hidden[i, : s.shape[0]] = s.to(device, torch.float32)
            mask[i, : s.shape[0]] = 1
        dec = _decoder(self.rm)
        with _only_layers(dec, self.split, None, keep_norm=True):
            top = dec(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
        return self.rm.head_forward(top, mask)

    def score_fn(self):
        """A (traces, problems, task_type) -> (scores, totals) function for heldout_metrics."""
        def fn(traces, problems, task_type):
            items = [(task_type, p, t) for p, t in zip(problems, traces)]
            self.ensure(items)
            was = self.rm.training
            self.rm.eval()
            scores, totals = [], []
            with torch.no_grad():
                for start in range(0, len(items), 32):
                    out = self.forward(items[start: start + 32])
                    scores += out.score.tolist()
                    totals += torch.sigmoid(out.total_logit).tolist()
            self.rm.train(was)
            return scores, totals
        return fn
