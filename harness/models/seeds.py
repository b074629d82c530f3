"""Per-sample seeds, so that the n samples of one prompt differ while every run stays reproducible."""

from __future__ import annotations

import hashlib

from tl_eval.harness.types import GenerationRequest


def request_seed(request: GenerationRequest) -> int:
    """The backend seed of a request: its sampling seed for sample 0, a stable mix of seed and index otherwise."""
    seed, index = request.sampling.seed, request.sample_index
    if index == 0:
        return seed % (2**31)
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31)
