"""Turn (problem, trace, task_type) into padded token batches for the Reason RM."""

from __future__ import annotations

from collections.abc import Sequence

import torch

MIN_PROBLEM_TOKENS = 48  # keep at least this much of the problem when a trace alone would fill the window


def encode(tokenizer, problems: Sequence[str], traces: Sequence[str], task_type: str,
           max_length: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids/attention_mask; each row ends with eos, the token the RM pools."""
    if max_length < MIN_PROBLEM_TOKENS + 32:
        raise ValueError(f"max_length {max_length} is too short; use at least {MIN_PROBLEM_TOKENS + 32}")
    head = tokenizer(f"Task: {task_type}\nProblem:\n", add_special_tokens=False)["input_ids"]
    mid = tokenizer("\n\nReasoning:\n", add_special_tokens=False)["input_ids"]
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    p_ids = tokenizer(list(problems), add_special_tokens=False)["input_ids"]
    t_ids = tokenizer(list(traces), add_special_tokens=False)["input_ids"]
    budget = max_length - len(head) - len(mid) - 1
    rows = []
    for p, t in zip(p_ids, t_ids):
        # The trace is what is judged, so it gets the window first; the problem keeps its start.
        t = t[: budget - min(len(p), MIN_PROBLEM_TOKENS)]
        p = p[: budget - len(t)]
        rows.append(head + p + mid + t + [eos])
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}
