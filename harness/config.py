"""The resolved configuration of one evaluation run."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.pipeline.trace import CLOSE
from tl_eval.harness.types import SamplingParams

DEFAULT_FROZEN = "builtin:qwen2.5-coder-0.5b-instruct"
# `tagged`: the planner's turn is opened with <reasoning> and stops at </reasoning> (docs/faithfulness.md);
# `free`: the planner writes its whole turn and the trace is read out of its tags afterwards.
PLANNER_FORMATS = ("tagged", "free")
NO_PLANNER = "none"  # --planner none: the executor alone, condition `none` only


def default_cache_dir() -> Path:
    return Path(os.environ.get("TL_EVAL_CACHE", Path.home() / ".cache" / "tl-eval"))


def resolve_cache(cache: str | None) -> Path | None:
    """The generation cache a `cache` setting names: None (the default cache), "off" (in memory only) or a path."""
    if cache == "off":
        return None
    return Path(cache) if cache else default_cache_dir() / "generations.sqlite"


def default_baselines_dir() -> Path:
    """$TL_EVAL_BASELINES, else the repository's `baselines/` (beside the harness folder of an editable install)."""
    env = os.environ.get("TL_EVAL_BASELINES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "baselines"


def default_data_dir() -> Path | None:
    value = os.environ.get("TL_EVAL_DATA_DIR")
    return Path(value) if value else None


@dataclass
class VerifierSettings:
    """How verdicts are reached (sandbox tier and limits, math grading): one model for the evaluation, the trainer
    and every command that verifies, so that all of them configure tasks, and key verdicts, alike."""

    math_pipeline: str = "strict"
    grader_timeout_s: float = 5.0
    sandbox_tier: str = "auto"
    allow_unsandboxed: bool = False
    time_limit_factor: float = 4.0
    min_time_limit_s: float = 1.0
    sample_time_cap_s: float = 20.0
    memory_mb: int = 1024
    workers: int | None = None

    @classmethod
    def of(cls, config) -> VerifierSettings:
        """The verifier settings among a config's fields (RunConfig, the trainer's TrainConfig)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)})

    def task_options(self) -> dict:
        """The options `Task.configure` takes."""
        from tl_eval.harness.verify.code import SandboxLimits

        limits = SandboxLimits(time_limit_floor_s=self.min_time_limit_s, time_limit_factor=self.time_limit_factor,
                               sample_time_cap_s=self.sample_time_cap_s, memory_mb=self.memory_mb,
                               workers=self.workers)
        return {"sandbox_limits": limits, "sandbox_tier": self.sandbox_tier,
                "allow_unsandboxed": self.allow_unsandboxed, "math_pipeline": self.math_pipeline,
                "grader_timeout_s": self.grader_timeout_s}


_V = VerifierSettings  # RunConfig's verifier fields take their defaults from it


@dataclass
class SamplingSettings:
    """How planner and executor decode: one model for the evaluation, the trainer's executor calls and
    lm-eval's tl-pair, so that the same settings make the same requests (and cache keys) everywhere.

    Every sample of a prompt has the same `seed`; the backends derive sample i's own seed from (seed, i)
    (harness.models.seeds), so no caller adds i to the seed.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    planner_max_tokens: int = 384
    executor_max_tokens: int = 512
    seed: int = 1234
    planner_format: str = "tagged"

    @classmethod
    def of(cls, config) -> SamplingSettings:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)})

    def planner(self, task_stops: tuple[str, ...] = ()) -> SamplingParams:
        """The planner's turn; the tagged format stops at the closing tag (and at the task's own stops)."""
        stop = (CLOSE, *task_stops) if self.planner_format == "tagged" else ()
        return SamplingParams(self.temperature, self.top_p, self.planner_max_tokens, self.seed, stop)

    def executor(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.executor_max_tokens, self.seed)


_S = SamplingSettings


@dataclass
class RunConfig:
    """Everything that determines what a run computes, plus where it writes."""

    tasks: list[str]
    planner: str
    executor: str = "frozen"
    frozen_executor: str = DEFAULT_FROZEN
    n_samples: int = 1
    temperature: float = _S.temperature
    top_p: float = _S.top_p
    planner_max_tokens: int = _S.planner_max_tokens
    executor_max_tokens: int = _S.executor_max_tokens
    seed: int = _S.seed
    limit: int | None = None
    conditions: list[str] = field(default_factory=lambda: ["full", "none"])
    k: list[int] = field(default_factory=lambda: [1, 5, 10])
    data_dir: str | None = None
    output: str = "runs"
    run_id: str | None = None
    cache: str | None = None  # None: the default cache; "off": in-memory only
    math_pipeline: str = _V.math_pipeline
    grader_timeout_s: float = _V.grader_timeout_s
    sandbox_tier: str = _V.sandbox_tier
    allow_unsandboxed: bool = _V.allow_unsandboxed
    time_limit_factor: float = _V.time_limit_factor
    min_time_limit_s: float = _V.min_time_limit_s
    sample_time_cap_s: float = _V.sample_time_cap_s
    memory_mb: int = _V.memory_mb
    workers: int | None = _V.workers
    rm: str | None = None
    paraphraser: str | None = None
    planner_format: str = _S.planner_format

    @property
    def verifier(self) -> VerifierSettings:
        return VerifierSettings.of(self)

    @property
    def sampling(self) -> SamplingSettings:
        return SamplingSettings.of(self)

    @property
    def executor_alone(self) -> bool:
        return self.planner == NO_PLANNER

    def cache_path(self) -> Path | None:
        return resolve_cache(self.cache)

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self, planner_fp: str, executor_fp: str) -> str:
        """Hash of what the results depend on (not where they are written); names the run directory."""
        skip = {"output", "run_id", "cache", "workers", "data_dir", "frozen_executor"}  # the fingerprints cover models
        keep = {k: v for k, v in self.to_dict().items() if k not in skip}
        keep["planner"], keep["executor"] = planner_fp, executor_fp
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:10]


# RunConfig field -> (command-line flag, rule in words, test). Checked before anything is loaded, so that a
# bad value from the command line or from --config stops the run before its first generation.
_POSITIVE = ("a number above 0", lambda v: v > 0)
_AT_LEAST_1 = ("a whole number of at least 1", lambda v: v >= 1)
NUMERIC_RULES: dict[str, tuple[str, str, object]] = {
    "n_samples": ("--n-samples", *_AT_LEAST_1),
    "limit": ("--limit", *_AT_LEAST_1),
    "temperature": ("--temperature", "0 (greedy) or more, e.g. 0.7", lambda v: v >= 0),
    "top_p": ("--top-p", "above 0 and at most 1, e.g. 0.95", lambda v: 0 < v <= 1),
    "planner_max_tokens": ("--planner-max-tokens", *_AT_LEAST_1),
    "executor_max_tokens": ("--executor-max-tokens", *_AT_LEAST_1),
    # Every backend and the bootstrap take it: numpy refuses negative seeds, llama.cpp keeps 32 bits.
    "seed": ("--seed", f"a whole number from 0 to {2**32 - 1}", lambda v: 0 <= v < 2**32),
    "k": ("--k", "a list of whole numbers of at least 1, e.g. 1,5,10", lambda v: v >= 1),
    "grader_timeout_s": ("--grader-timeout", *_POSITIVE),
    "time_limit_factor": ("--time-limit-factor", *_POSITIVE),
    "min_time_limit_s": ("--min-time-limit", *_POSITIVE),
    "sample_time_cap_s": ("--sample-time-cap", *_POSITIVE),
    "memory_mb": ("--memory-mb", *_AT_LEAST_1),
    "workers": ("--workers", *_AT_LEAST_1),
}
_INTEGERS = {"n_samples", "limit", "planner_max_tokens", "executor_max_tokens", "seed", "k", "memory_mb", "workers"}


def check_numbers(config: RunConfig, flags: dict[str, str] | None = None,
                  origins: dict[str, str] | None = None) -> None:
    """ConfigError naming the first numeric setting out of its range, and where it was set.

    `flags` renames a field's flag (`--max-tokens` sets both token limits); `origins` maps a field set in
    a YAML file (`--config`) to that file, so the message points at the line to change.
    """
    for name, (flag, rule, ok) in NUMERIC_RULES.items():
        value = getattr(config, name)
        if value is None:  # unset optional values (limit, workers) mean "all" / "one per core"
            continue
        for v in value if isinstance(value, list) else [value]:
            integral = isinstance(v, int) and not isinstance(v, bool)
            number = integral or (isinstance(v, float) and name not in _INTEGERS)
            if number and math.isfinite(v) and ok(v):
                continue
            flag = (flags or {}).get(name, flag)
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            origin = (origins or {}).get(name)
            if origin:
                key = flag.lstrip("-")
                raise ConfigError(f"{key}: {shown} in {origin} is out of range: it must be {rule}",
                                  f"set {key} in {origin} to {rule}")
            raise ConfigError(f"{flag} {shown} is out of range: it must be {rule}", f"give {flag} {rule}")
