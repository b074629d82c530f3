"""The records that cross layers: one sample, one condition's result, one task's result, one run's result.

Each has one JSON reader (`from_json`) and one writer (`to_json`); `samples_<task>.jsonl` and `results.json`
are these records as JSON (docs/results-schema.md). Schema `tl-eval/results`, version 2; a version 1 file
(written before the rename of the harness's rm × uplift figures) is read and upgraded in `_upgrade_v1`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Generation, Verdict


def valid_text(value):
    """`value` with lone surrogates in its strings replaced (U+FFFD): any text a program produced stays writable."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(valid_text(v) for v in value)
    return value


SCHEMA = "tl-eval/results"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class Intervention:
    """What a condition did to the trace. `removed`: what masking took out; `same_as_full`: masking found
    nothing to remove, so the sample is `full` by definition and takes its outcome."""

    applied: bool
    kind: str | None = None
    span: list[int] | None = None
    note: str = ""
    removed: list | None = None
    same_as_full: bool = False

    def to_json(self) -> dict:
        out = {"applied": self.applied, "kind": self.kind, "span": self.span, "note": self.note}
        if self.removed is not None:
            out["removed"] = self.removed
        if self.same_as_full:
            out["same_as_full"] = True
        return out

    @classmethod
    def from_json(cls, d: dict) -> Intervention:
        return cls(**_known(cls, d, "intervention"))


# The fields a sample's executor call and verdict fill in; copied from `full` where a condition is `full`
# by definition.
OUTCOME_FIELDS = ("executor_output", "executor_finish_reason", "artifact", "artifact_sha", "status", "passed",
                  "failing_test", "stderr", "verify_seconds", "verdict_details")
_OMITTED_WHEN_NONE = ("skipped", "rm_score", "rm_lift")


@dataclass
class SampleRecord:
    """One problem × planner sample × condition: the trace, what the executor saw and wrote, and the verdict.

    `status` is None for a sample that was recorded but not run (`skipped`: the condition did not apply).
    """

    task: str
    problem_id: str
    sample_index: int
    condition: str
    planner_output: str | None = None
    planner_finish_reason: str | None = None
    planner_tokens: int = 0
    trace: str | None = None
    trace_tagged: bool | None = None
    tag_compliant: bool | None = None
    leakage: bool | None = None
    executor_trace: str | None = None
    intervention: Intervention = field(default_factory=lambda: Intervention(True, note="no trace"))
    executor_output: str | None = None
    executor_finish_reason: str | None = None
    executor_prompt_tokens: int = 0
    executor_tokens: int = 0
    executor_cached: bool = False
    artifact: str | None = None
    artifact_sha: str | None = None
    status: str | None = None
    passed: bool | None = None
    failing_test: str | None = None
    stderr: str = ""
    verify_seconds: float = 0.0
    verdict_details: dict = field(default_factory=dict)
    skipped: str | None = None
    rm_score: float | None = None  # with --rm: the Reason RM's score of executor_trace
    rm_lift: float | None = None  # with --rm, `full` only: rm_score × (passed − passed under `none`)

    @property
    def key(self) -> tuple[str, int]:
        return self.problem_id, self.sample_index

    @property
    def scored(self) -> bool:
        """Counts for the models: it ran, and the infrastructure did not fail (sandbox_error is never theirs)."""
        return self.status is not None and self.status != "sandbox_error"

    def set_generation(self, g: Generation) -> None:
        self.executor_output, self.executor_finish_reason = g.text, g.finish_reason
        self.executor_prompt_tokens, self.executor_tokens, self.executor_cached = (
            g.prompt_tokens, g.completion_tokens, g.cached)

    def set_verdict(self, artifact: str | None, artifact_sha: str | None, v: Verdict) -> None:
        # The verifier cleans its text, but a verdict cached by an older version may hold lone surrogates.
        self.artifact, self.artifact_sha = artifact, artifact_sha
        self.status, self.passed = v.status, v.passed
        self.failing_test, self.stderr = valid_text(v.failing_test), valid_text(v.stderr)
        self.verify_seconds, self.verdict_details = v.seconds, valid_text(v.details)

    def copy_outcome(self, other: SampleRecord) -> None:
        """Take `other`'s executor answer and verdict, with no executor call of its own."""
        for name in OUTCOME_FIELDS:
            setattr(self, name, getattr(other, name))
        self.executor_cached, self.executor_tokens, self.executor_prompt_tokens = True, 0, 0

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["intervention"] = self.intervention.to_json()
        for name in _OMITTED_WHEN_NONE:
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_json(cls, d: dict) -> SampleRecord:
        if "tracelift_score" in d:  # version 1's name of rm_lift
            d = {**d, "rm_lift": d["tracelift_score"]}
            del d["tracelift_score"]
        data = _known(cls, d, "sample record")
        data["intervention"] = Intervention.from_json(data.get("intervention") or {"applied": True})
        return cls(**data)


def outcomes(records: list[SampleRecord]) -> dict[str, dict[str, float]]:
    """Per condition, each problem's pass rate over its scored samples (n = 1: 0.0 or 1.0): the vectors that
    paired tests compare. Unscored samples (a sandbox_error, a condition that did not apply) are left out."""
    n: dict[str, Counter] = defaultdict(Counter)
    c: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.scored:
            n[r.condition][r.problem_id] += 1
            c[r.condition][r.problem_id] += bool(r.passed)
    return {cond: {pid: c[cond][pid] / k for pid, k in per.items()} for cond, per in n.items()}


def read_samples(path: Path) -> list[SampleRecord]:
    """A samples_<task>.jsonl file (this version's or version 1's; the file itself carries no version)."""
    if not path.exists():
        raise DataError(f"no samples file {path}", "re-run the evaluation that wrote this run directory")
    out = []
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(SampleRecord.from_json(json.loads(line)))
            except (json.JSONDecodeError, TypeError, DataError) as e:
                raise DataError(f"{path}, line {n}: not a tl-eval sample record ({e})",
                                "re-run the evaluation that wrote this run directory") from None
    return out


@dataclass
class Estimate:
    """A mean over problems with its bootstrap CI; value None when nothing was measured."""

    value: float | None
    n: int = 0
    ci_low: float | None = None
    ci_high: float | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict | None) -> Estimate:
        return cls(**_known(cls, d or {"value": None}, "estimate"))


@dataclass
class ConditionResult:
    """One condition's pass@k over the problems it scored, its verdict statuses and the executor's cost."""

    pass_at_k: dict[str, float]
    n_problems: int
    n_samples: int
    status_counts: dict[str, int]
    executor_tokens: int = 0
    executor_seconds: float = 0.0

    @property
    def pass1(self) -> float | None:
        return self.pass_at_k.get("1")

    def to_json(self) -> dict:
        out = asdict(self)
        return {"pass@k": out.pop("pass_at_k"), **out}

    @classmethod
    def from_json(cls, d: dict) -> ConditionResult:
        d = dict(d)
        return cls(pass_at_k=d.pop("pass@k", {}), **_known(cls, d, "condition result"))


@dataclass
class TaskResult:
    """Everything measured on one task. `uplift` / `uplift_masked` are `metrics.paired.uplift_stats` dicts;
    `faithfulness` maps metric name to its value, n and CI (metrics.faithfulness); `cost` holds per-stage
    tokens and seconds and the per-problem means."""

    conditions: dict[str, ConditionResult]
    faithfulness: dict[str, dict] = field(default_factory=dict)
    leakage_rate: Estimate = field(default_factory=lambda: Estimate(None))
    tag_compliance: Estimate = field(default_factory=lambda: Estimate(None))
    cost: dict = field(default_factory=dict)
    uplift: dict | None = None
    uplift_masked: dict | None = None
    leaking_samples: list[list] = field(default_factory=list)
    traces: dict[str, int] = field(default_factory=dict)
    not_applicable: dict[str, int] = field(default_factory=dict)
    rm: dict | None = None  # with --rm: mean RM score per condition, rm_lift_mean, rm_uplift

    def pass1(self, condition: str) -> float | None:
        c = self.conditions.get(condition)
        return c.pass1 if c else None

    def flat(self) -> dict[str, float | None]:
        """lm-eval-style `"metric,filter"` keys; the filter is the trace condition."""
        flat: dict[str, float | None] = {}
        for cond, c in self.conditions.items():
            for k, v in c.pass_at_k.items():
                flat[f"pass@{k},{cond}"] = v
        if self.pass1("full") is not None:
            flat["pair_pass@1,full"] = self.pass1("full")
        if self.pass1("none") is not None:
            flat["exec_pass@1,none"] = self.pass1("none")
        for name, cond in (("uplift", "full"), ("uplift_masked", "masked")):
            u = getattr(self, name)
            if u:
                flat.update({f"{name},{cond}": u["uplift"], f"{name}_ci_low,{cond}": u["uplift_ci_low"],
                             f"{name}_ci_high,{cond}": u["uplift_ci_high"], f"{name}_p_value,{cond}": u["p_value"]})
        for name, m in self.faithfulness.items():
            if name != "acc":
                flat[f"{name},faithfulness"] = m.get("value")
        for name in ("leakage_rate", "tag_compliance"):
            if getattr(self, name).value is not None:
                flat[f"{name},full"] = getattr(self, name).value
        return flat

    def to_json(self) -> dict:
        out: dict[str, Any] = {"conditions": {c: r.to_json() for c, r in self.conditions.items()}}
        for name in ("uplift", "uplift_masked"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(faithfulness=self.faithfulness, leakage_rate=self.leakage_rate.to_json(),
                   tag_compliance=self.tag_compliance.to_json(), leaking_samples=self.leaking_samples,
                   traces=self.traces, not_applicable=self.not_applicable, cost=self.cost)
        if self.rm is not None:
            out["rm"] = self.rm
        return out

    @classmethod
    def from_json(cls, d: dict, version: int = SCHEMA_VERSION) -> TaskResult:
        d = dict(d)
        if not isinstance(d.get("conditions"), dict):
            raise DataError("a task's metrics have no 'conditions'", "re-run the evaluation that wrote it")
        if version == 1 and d.get("rm"):
            rm = dict(d["rm"])
            for old, new in (("tracelift_score_mean", "rm_lift_mean"), ("tracelift_score_task", "rm_uplift")):
                if old in rm:
                    rm[new] = rm.pop(old)
            d["rm"] = rm
        data = _known(cls, d, "task result")
        data["conditions"] = {c: ConditionResult.from_json(r) for c, r in data["conditions"].items()}
        for name in ("leakage_rate", "tag_compliance"):
            data[name] = Estimate.from_json(data.get(name))
        return cls(**data)


@dataclass
class RunResult:
    """results.json: every task's result, the run's configuration (config.json's content) and provenance."""

    run_id: str
    tasks: dict[str, TaskResult]  # "metrics" in the file
    n_samples: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> {original, effective}
    config: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    systems: dict[str, str] = field(default_factory=dict)  # {planner, executor} specs
    model_calls: dict[str, int] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION  # of the file it was read from

    @property
    def executor_alone(self) -> bool:
        return bool((self.config.get("planner") or {}).get("executor_alone")) or self.systems.get("planner") == "none"

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": self.run_id,
                "results": {t: {"alias": t, **r.flat()} for t, r in self.tasks.items()},
                "metrics": {t: r.to_json() for t, r in self.tasks.items()}, "n-samples": self.n_samples,
                "config": self.config, "versions": self.versions, "systems": self.systems,
                "model_calls": self.model_calls}

    @classmethod
    def from_json(cls, d: dict, where: str = "results.json") -> RunResult:
        if not isinstance(d, dict) or d.get("schema") != SCHEMA or d.get("schema_version") not in READABLE_VERSIONS:
            got = (d.get("schema"), d.get("schema_version")) if isinstance(d, dict) else (None, None)
            raise DataError(f"{where} has schema {got[0]!r} version {got[1]!r}; this tl-eval reads {SCHEMA!r} "
                            f"versions {', '.join(map(str, READABLE_VERSIONS))}",
                            "re-run the evaluation with this version of tl-eval")
        missing = [k for k in ("results", "metrics", "config") if not isinstance(d.get(k), dict)]
        if missing:
            raise DataError(f"{where} lacks {', '.join(missing)} (not a tl-eval results file, or truncated)",
                            "re-run the evaluation that wrote it, or remove it from the command")
        version = d["schema_version"]
        tasks = {}
        for task, m in d["metrics"].items():
            try:
                tasks[task] = TaskResult.from_json(m, version)
            except (DataError, TypeError, AttributeError) as e:
                raise DataError(f"{where}: metrics for task {task!r} do not load ({getattr(e, 'problem', e)})",
                                "re-run the evaluation that wrote it") from None
        return cls(run_id=str(d.get("run_id") or ""), tasks=tasks, n_samples=d.get("n-samples") or {},
                   config=d["config"], versions=d.get("versions") or {}, systems=d.get("systems") or {},
                   model_calls=d.get("model_calls") or {}, schema_version=version)


def _known(cls, d: dict, what: str) -> dict:
    """`d`'s keys that are fields of `cls`; an unknown key is an error that names it (a foreign or newer file)."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise DataError(f"{what} has unknown fields {unknown}", "read it with the tl-eval version that wrote it")
    return dict(d)
