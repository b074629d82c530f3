"""The one interface every model backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from tl_eval.harness.types import Generation, GenerationRequest


def split_prefill(messages) -> tuple[list[dict], str]:
    """(the conversation, the assistant prefill): a trailing assistant message is the start of the reply that
    the model continues (HF's `continue_final_message`), not a finished turn. Generations never include it."""
    msgs = [dict(m) for m in messages]
    if msgs and msgs[-1].get("role") == "assistant":
        return msgs[:-1], msgs[-1].get("content", "")
    return msgs, ""


class Generator(ABC):
    """A chat model. Backends batch or parallelise `generate` as they can; results keep request order."""

    spec: str  # the spec string it was built from, e.g. "builtin:qwen2.5-coder-0.5b-instruct"

    @abstractmethod
    def fingerprint(self) -> str:
        """A stable identity of weights + backend settings that change outputs; part of every cache key."""

    def sampled_fingerprint(self) -> str:
        """The fingerprint in the cache keys of sampled requests (temperature > 0): the model's, unless the backend
        draws sampled tokens on another path than it decodes greedy ones."""
        return self.fingerprint()

    def kernel_facts(self) -> dict:
        """What of the backend, besides the machine (tl_eval.harness.machine), decides how its kernels round: its
        build, device and thread count. Recorded with each run; two runs whose facts differ may break near ties
        differently, so their greedy outputs are compared by the noise rule, not exactly."""
        return {}

    @abstractmethod
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        """Answer every request. `on_done(i, gen)` is called as each finishes (for caching and progress)."""

    def close(self) -> None:
        """Release weights, connections or processes."""

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
