"""Typed records that cross module boundaries: requests, generations, problems, verdicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}

TaskType = Literal["code", "math"]

# Verdict statuses, evalplus-style. `sandbox_error` is the infrastructure's fault and never a model failure.
STATUSES = ("pass", "fail", "timeout", "compile_error", "runtime_error", "no_answer", "sandbox_error")


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings; part of every cache key."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion to make. `sample_index` distinguishes the n samples of the same prompt."""

    messages: tuple[Message, ...]
    sampling: SamplingParams
    sample_index: int = 0


@dataclass
class Generation:
    """A model's answer to one request."""

    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
    # Prompt tokens the backend computed (a prefix already in its cache is not): None when it does not say.
    prompt_tokens_computed: int | None = None


@dataclass(frozen=True)
class Problem:
    """One benchmark item. Code problems carry tests; math problems carry a gold answer."""

    problem_id: str
    task: str
    task_type: TaskType
    prompt: str  # the problem statement as shown to planner and executor
    answer: str | None = None  # math: the gold final answer
    reference: str | None = None  # code: a full reference program; math: the reference solution text
    entry_point: str | None = None  # code: the function the tests call
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Verdict:
    """The verifier's judgement of one artifact."""

    status: str  # one of STATUSES
    failing_test: str | None = None
    stderr: str = ""  # bounded excerpt
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {STATUSES}")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
