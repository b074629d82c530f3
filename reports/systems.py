"""Systems to compare (a planner-executor pair, or an executor alone) and the numbers read for them.

Every number is a `Value` that carries its source: the results file and a JSON pointer into it, so a page
can be checked against the file it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tl_eval.harness.metrics.specs import BY_NAME
from tl_eval.reports.load import FULL, NONE, Run, short_spec


@dataclass(frozen=True)
class Value:
    """A number read from a results file, with its CI when it has one, and where it came from."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    source: str = ""  # "<file>#<JSON pointer>"
    divisor: int = 1  # value = the number at source / divisor (a per-problem mean of a recorded total)

    def to_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "source": self.source,
                "divisor": self.divisor}


MISSING = Value(None)


def pointer(*parts: str) -> str:
    """An RFC 6901 JSON pointer."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(doc: dict, ptr: str):
    """Follow a JSON pointer; KeyError when absent."""
    node = doc
    for part in ptr.lstrip("/").split("/") if ptr else []:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@dataclass
class System:
    """What one leaderboard row or report series shows. `condition` is full (the pair) or none (executor alone)."""

    key: str
    label: str
    planner: str
    executor: str
    condition: str
    runs: dict[str, Run] = field(default_factory=dict)  # task -> the run that provides it
    training_mode: str = "—"
    checkpoint: str = "—"
    source_file: str = ""  # results.json (or a baseline entry file) the numbers come from
    # task -> condition -> problem -> pass rate (a recorded entry's outcome vectors; runs read their samples)
    outcome_tables: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    source_prefix: str = ""  # JSON pointer of the results inside source_file (a baseline entry: "/results")
    pointer_map: dict[str, str] = field(default_factory=dict)  # results pointer -> pointer in source_file
    planner_system: str | None = None  # "reference plan" or "self-planner" (harness/planners.py), else None

    @property
    def executor_alone(self) -> bool:
        return self.condition == NONE

    @property
    def tasks(self) -> list[str]:
        return list(self.runs)

    def files(self, task: str) -> str:
        run = self.runs[task]
        if self.source_file and run.path is None:
            return self.source_file
        return str(run.path / "results.json") if run.path else self.source_file

    def has_samples(self, task: str) -> bool:
        run = self.runs.get(task)
        return bool(run and run.path and (run.path / f"samples_{task.replace('/', '_')}.jsonl").exists())

    def outcomes(self, task: str, condition: str | None = None) -> dict[str, float] | None:
        """Per-problem pass rate under `condition` (default: this system's); None when neither samples nor a
        table have it."""
        condition = condition or self.condition
        if self.has_samples(task):
            return self.runs[task].outcomes(task, condition) or None
        return (self.outcome_tables.get(task) or {}).get(condition)

    def traces(self, task: str) -> dict[str, tuple[str, ...]] | None:
        """Per problem, the planner's traces (by sample index) under `full`; None without samples."""
        if self.executor_alone or not self.has_samples(task):
            return None
        out: dict[str, dict[int, str]] = {}
        for r in self.runs[task].samples(task):
            if r.condition == FULL:
                out.setdefault(r.problem_id, {})[r.sample_index] = r.trace or ""
        return {pid: tuple(t for _, t in sorted(by.items())) for pid, by in out.items()}

    def _get(self, task: str, *path: str) -> Value:
        run = self.runs.get(task)
        if run is None:
            return MISSING
        ptr = pointer("metrics", task, *path)
        try:
            v = resolve(run.results, ptr)
        except (KeyError, TypeError, IndexError):
            return MISSING
        src = self.pointer_map.get(ptr) or f"{self._prefix(task)}{ptr}"
        return Value(None if v is None else float(v), source=f"{self.files(task)}#{src}")

    def _prefix(self, task: str) -> str:
        run = self.runs[task]
        return self.source_prefix if run.path is None else ""

    def _with_ci(self, task: str, *path: str) -> Value:
        v = self._get(task, *path, "value")
        if v.value is None:
            return v
        return Value(v.value, self._get(task, *path, "ci_low").value, self._get(task, *path, "ci_high").value, v.source)

    def pass1(self, task: str) -> Value:
        """pass@1 under this system's condition, with the CI of the per-problem accuracy."""
        return self.metric(task, "exec_pass@1" if self.executor_alone else "pair_pass@1")

    def exec_pass1(self, task: str) -> Value:
        return self.metric(task, "exec_pass@1")

    def uplift(self, task: str, name: str = "uplift") -> Value:
        """`uplift` (full − none) or `uplift_masked` (masked − none), with its paired CI."""
        return MISSING if self.executor_alone else self.metric(task, name)

    def uplift_p(self, task: str, name: str = "uplift") -> Value:
        return MISSING if self.executor_alone else self.metric(task, f"{name}_p")

    def metric(self, task: str, name: str) -> Value:
        """A metric of harness.metrics.specs, with its CI when the spec has one."""
        spec = BY_NAME[name]
        v = self._get(task, *spec.path)
        if v.value is None or spec.ci is None:
            return v
        return Value(v.value, self._get(task, *spec.ci[0]).value, self._get(task, *spec.ci[1]).value, v.source)

    def faithfulness(self, task: str, name: str) -> Value:
        """A faithfulness or trace metric; the executor alone has none."""
        return MISSING if self.executor_alone else self.metric(task, name)

    def cost(self, task: str, name: str) -> Value:
        """planner_tokens_per_problem, executor_tokens_per_problem or seconds_per_problem."""
        if self.executor_alone:
            return self._exec_alone_cost(task, name)
        return self.metric(task, name)

    def _exec_alone_cost(self, task: str, name: str) -> Value:
        # The executor alone costs only its `none` stage; results.json records that per stage.
        n = self.n_problems(task)
        stage = {"executor_tokens_per_problem": "completion_tokens", "seconds_per_problem": "seconds"}.get(name)
        if stage is None or not n:
            return MISSING
        v = self._get(task, "cost", "stages", f"execute:{NONE}", stage)
        return v if v.value is None else Value(v.value / n, source=v.source, divisor=n)

    def n_problems(self, task: str) -> int:
        v = self._get(task, "conditions", self.condition, "n_problems").value
        return int(v) if v is not None else 0

    def curve(self, task: str) -> list[tuple[float, float]]:
        run = self.runs.get(task)
        pts = ((run.results.get("metrics", {}).get(task, {}).get("faithfulness") or {})
               .get("early_answering_aoc") or {}).get("curve") if run else None
        return [(float(x), float(y)) for x, y in pts or [] if y is not None]

    def accuracy_by_condition(self, task: str) -> dict[str, Value]:
        run = self.runs.get(task)
        if run is None or self.executor_alone:
            return {}
        return {c: self._with_ci(task, "faithfulness", "acc", c) if
                self._get(task, "faithfulness", "acc", c, "value").value is not None
                else self._get(task, "conditions", c, "pass@k", "1") for c in run.conditions(task)}


def pair_system(run: Run, label: str | None = None) -> System:
    return System(key=f"pair:{run.run_id}", label=label or run.label, planner=run.planner, executor=run.executor,
                  condition=FULL, runs={t: run for t in run.tasks if FULL in run.conditions(t)},
                  training_mode=training_mode(run), checkpoint=checkpoint_of(run.planner),
                  planner_system=(run.config.get("planner") or {}).get("system"))


def executor_alone_systems(runs: list[Run]) -> list[System]:
    """One system per distinct executor: its `none` condition, from the first run that has each task."""
    out: dict[str, System] = {}
    for run in runs:
        fp = run.executor_fingerprint
        system = out.setdefault(fp, System(
            key=f"exec:{fp}", label=f"{short_spec(run.executor)} (executor alone)", planner="—", executor=run.executor,
            condition=NONE, training_mode="—", checkpoint="—"))
        for task in run.tasks:
            # The executor alone does not depend on the planner; take the run that scored it on most problems.
            # Ties go to the run that really called the executor (not the cache), so its cost is the real one.
            if NONE in run.conditions(task) and (task not in system.runs or
                                                 _n_cost(run, task) > _n_cost(system.runs[task], task)):
                system.runs[task] = run
    return [s for s in out.values() if s.runs]


def _n(run: Run, task: str) -> int:
    return len(run.task_info(task).get("problem_ids", [])) or int(
        run.metrics(task)["conditions"].get(NONE, {}).get("n_problems", 0))


def _n_cost(run: Run, task: str) -> tuple[int, float]:
    stage = run.metrics(task).get("cost", {}).get("stages", {}).get(f"execute:{NONE}", {})
    return _n(run, task), float(stage.get("seconds") or 0.0)


def checkpoint_of(planner_spec: str) -> str:
    """The checkpoint a planner spec names (an hf path or a GGUF file), else '—'."""
    kind, _, target = planner_spec.partition(":")
    if kind in ("hf", "llamacpp") or Path(planner_spec).suffix == ".gguf" or planner_spec.startswith("/"):
        path = (target if kind in ("hf", "llamacpp") else planner_spec).split("?")[0]
        return Path(path).name or path
    return "—"


def training_mode(run: Run) -> str:
    """The planner's training mode as the run recorded it (config.json `planner.training_mode`); `none` for
    models that are not checkpoints (builtin, scripted, openai); `—` (unknown) for an unrecorded checkpoint."""
    recorded = run.config.get("planner", {}).get("training_mode")
    if recorded:
        return str(recorded)
    return "—" if checkpoint_of(run.planner) != "—" else "none"
