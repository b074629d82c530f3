"""The resolved configuration of one evaluation run."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.types import SamplingParams

DEFAULT_FROZEN = "builtin:qwen2.5-coder-0.5b-instruct"


def default_cache_dir() -> Path:
    return Path(os.environ.get("TL_EVAL_CACHE", Path.home() / ".cache" / "tl-eval"))


def default_data_dir() -> Path | None:
    value = os.environ.get("TL_EVAL_DATA_DIR")
    return Path(value) if value else None


@dataclass
class RunConfig:
    """Everything that determines what a run computes, plus where it writes."""

    tasks: list[str]
    planner: str
    executor: str = "frozen"
    frozen_executor: str = DEFAULT_FROZEN
    n_samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    planner_max_tokens: int = 384
    executor_max_tokens: int = 512
    seed: int = 1234
    limit: int | None = None
    conditions: list[str] = field(default_factory=lambda: ["full", "none"])
    k: list[int] = field(default_factory=lambda: [1, 5, 10])
    data_dir: str | None = None
    output: str = "runs"
    run_id: str | None = None
    cache: str | None = None  # None: the default cache; "off": in-memory only
    math_pipeline: str = "strict"
    grader_timeout_s: float = 5.0
    sandbox_tier: str = "auto"
    allow_unsandboxed: bool = False
    time_limit_factor: float = 4.0
    min_time_limit_s: float = 1.0
    sample_time_cap_s: float = 20.0
    memory_mb: int = 1024
    workers: int | None = None
    rm: str | None = None
    paraphraser: str | None = None

    def planner_sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.planner_max_tokens, self.seed)

    def executor_sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.executor_max_tokens, self.seed)

    def cache_path(self) -> Path | None:
        if self.cache == "off":
            return None
        return Path(self.cache) if self.cache else default_cache_dir() / "generations.sqlite"

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self, planner_fp: str, executor_fp: str) -> str:
        """Hash of what the results depend on (not where they are written); names the run directory."""
        skip = {"output", "run_id", "cache", "workers", "data_dir", "frozen_executor"}  # the fingerprints cover models
        keep = {k: v for k, v in self.to_dict().items() if k not in skip}
        keep["planner"], keep["executor"] = planner_fp, executor_fp
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:10]
