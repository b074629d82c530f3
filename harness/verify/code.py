"""The code verifier every code task uses: CodeJobs in, Verdicts out, through the sandbox worker pool."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from tl_eval.harness.errors import ConfigError, SandboxUnavailable
from tl_eval.harness.records import valid_text  # a verdict's text is the program's: made encodable here
from tl_eval.harness.types import Verdict
from tl_eval.harness.verify.code_job import CodeJob
from tl_eval.harness.verify.sandbox import tiers
from tl_eval.harness.verify.sandbox.pool import Pool, WorkerHandle, remove_stale

log = logging.getLogger(__name__)

RETRIES = 2  # attempts after the first when the infrastructure fails
HOST_SLACK_S = 30.0  # extra wait on a worker beyond the job's own cap before declaring it hung


@dataclass(frozen=True)
class SandboxLimits:
    """Limits per test and per sample; time limits scale with the reference's runtime (evalplus-style)."""

    time_limit_floor_s: float = 1.0  # evalplus --min-time-limit analogue
    time_limit_factor: float = 4.0  # evalplus --gt-time-limit-factor analogue
    sample_time_cap_s: float = 20.0  # cap per sample (all tests of one job)
    memory_mb: int = 1024  # the job's whole process tree (a memory cgroup), else each of its processes
    output_bytes: int = 64_000
    file_size_mb: int = 16
    disk_mb: int = 64  # size of the job directory (a tmpfs) where the tier can limit it
    workers: int | None = None  # default os.cpu_count()
    default_time_limit_s: float = 5.0  # per test, for a job without a measured `time_limit_s`

    def __post_init__(self) -> None:
        for name in ("time_limit_floor_s", "time_limit_factor", "sample_time_cap_s", "default_time_limit_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"sandbox limit {name}={getattr(self, name)!r} must be positive",
                                  f"set {name} to a number above 0")
        for name in ("memory_mb", "output_bytes", "file_size_mb", "disk_mb"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"sandbox limit {name}={getattr(self, name)!r} must be a positive integer",
                                  f"set {name} to an integer above 0")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ConfigError(f"sandbox workers={self.workers!r} must be a positive integer",
                              "set workers to 1 or more, or leave it unset for one per core")


def job_key(job: CodeJob) -> str:
    """Content hash of what determines a job's outcome."""
    blob = json.dumps([job.solution, job.entry_point, job.context, [[t.name, t.code] for t in job.tests]])
    return hashlib.sha256(blob.encode()).hexdigest()


class CodeVerifier:
    """Runs untrusted programs against trusted tests in the strongest sandbox tier available."""

    def __init__(self, limits: SandboxLimits = SandboxLimits(), tier: str = "auto", allow_unsandboxed: bool = False):
        self.limits = limits
        self.allow_unsandboxed = tiers.unsandboxed_allowed(allow_unsandboxed)
        self.warnings: list[str] = []
        self._reference_cache: dict[str, float] = {}
        remove_stale()
        self.tier, self.probe, first = self._choose(tiers.requested_tier(tier))
        self._pool = Pool(self.tier, limits.workers or os.cpu_count() or 1, first, limits.memory_mb, limits.disk_mb)

    def _choose(self, requested: str) -> tuple[str, dict, WorkerHandle]:
        if requested == "none" and not self.allow_unsandboxed:
            raise SandboxUnavailable(
                "sandbox tier 'none' runs model-written code without isolation and was not allowed",
                f"pass allow_unsandboxed=True (CLI: --allow-unsandboxed) or set {tiers.ALLOW_ENV}=1, "
                "or pick a real tier: install bubblewrap (apt-get install bubblewrap)")
        candidates = tiers.AUTO_ORDER if requested == "auto" else (requested,)
        failures = []
        for tier in candidates:
            handle = WorkerHandle(tier, 0, self.limits.memory_mb, self.limits.disk_mb)
            try:
                hello = handle.start()
            except SandboxUnavailable as e:
                failures.append(f"{tier}: {e.problem}")
                continue
            problems = tiers.check_probe(tier, hello)
            if not problems:
                self.warnings = tiers.warnings_for(tier, hello)
                for w in self.warnings:
                    log.warning(w)
                return tier, hello, handle
            handle.stop()
            failures.append(f"{tier}: {'; '.join(problems)}")
        if requested == "auto" and self.allow_unsandboxed:
            handle = WorkerHandle("none", 0, self.limits.memory_mb, self.limits.disk_mb)
            hello = handle.start()
            if "error" not in hello:
                self.warnings = tiers.warnings_for("none", hello)
                for w in self.warnings:
                    log.warning(w)
                return "none", hello, handle
            failures.append(f"none: {hello['error']}")
        raise SandboxUnavailable(
            "no usable code sandbox: " + " | ".join(failures),
            "install bubblewrap (apt-get install bubblewrap) or allow user namespaces; to run model code without "
            f"isolation at your own risk, pass --allow-unsandboxed or set {tiers.ALLOW_ENV}=1")

    def _message(self, job: CodeJob, time_limit: float | None = None) -> dict:
        limit = time_limit or job.time_limit_s or self.limits.default_time_limit_s
        return {"nonce": secrets.token_hex(8), "solution": job.solution, "entry_point": job.entry_point,
                "context": job.context, "tests": [[t.name, t.code] for t in job.tests],
                "time_limits": [limit] * len(job.tests), "sample_cap": self.limits.sample_time_cap_s,
                "limits": {"memory_mb": self.limits.memory_mb, "file_size_mb": self.limits.file_size_mb,
                           "output_bytes": self.limits.output_bytes}}

    def _run(self, messages: list[dict], progress) -> list[Verdict]:
        timeouts = [m["sample_cap"] + HOST_SLACK_S for m in messages]
        replies = self._pool.map(messages, timeouts, RETRIES, progress)
        return [Verdict(status=r["status"], failing_test=valid_text(r.get("failing_test")),
                        stderr=valid_text(r.get("stderr", "")), seconds=float(r.get("seconds", 0.0)),
                        details=valid_text({**r.get("details", {}), "tier": self.tier}))
                for r in replies]

    def verify(self, jobs: Sequence[CodeJob], progress: Callable[[int], None] | None = None) -> list[Verdict]:
        """One verdict per job, in order; `progress(n)` is called as jobs finish."""
        for job in jobs:
            if not isinstance(job, CodeJob):
                raise TypeError(f"verify() takes CodeJob objects, got {type(job).__name__}")
        return self._run([self._message(j) for j in jobs], progress)

    def reference_time_limits(self, jobs: Sequence[CodeJob]) -> list[float]:
        """Per-test limit for each job: max(floor, factor × slowest test of the job's (reference) solution)."""
        todo = [j for j in jobs if job_key(j) not in self._reference_cache]
        if todo:
            generous = max(self.limits.default_time_limit_s, self.limits.sample_time_cap_s)
            verdicts = self._run([self._message(j, generous) for j in todo], None)
            for job, v in zip(todo, verdicts):
                if not v.passed:
                    log.warning("reference of job %r did not pass (%s: %s); using the floor time limit",
                                job.job_id, v.status, v.details.get("reason", ""))
                slowest = max(v.details.get("test_seconds") or [0.0]) if v.passed else 0.0
                self._reference_cache[job_key(job)] = max(self.limits.time_limit_floor_s,
                                                          self.limits.time_limit_factor * slowest)
        return [self._reference_cache[job_key(j)] for j in jobs]

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> "CodeVerifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def isolation(self) -> dict:
        """Promise by promise, what this tier gives on this machine (docs/sandbox.md, "Threat model")."""
        return tiers.isolation(self.tier, self.probe)

    def describe(self) -> dict:
        """Tier, isolation, probe report and limits, for config.json."""
        return {"tier": self.tier, "isolation": self.isolation, "probe": self.probe, "warnings": self.warnings,
                "limits": asdict(self.limits)}
