"""Read run directories (results.json, samples) into typed runs; nothing else is read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.records import SampleRecord, outcomes
from tl_eval.harness.results import load_results, load_samples

FULL, NONE = "full", "none"


@dataclass(eq=False)  # identity: the same run read once is the same run
class Run:
    """One run directory: its results.json content (a RunResult's JSON, read by JSON pointers so that every
    number names its source), with its samples read on demand."""

    path: Path | None
    results: dict
    _samples: dict[str, list[SampleRecord]] = field(default_factory=dict, repr=False)
    _outcomes: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.results.get("run_id") or (self.path.name if self.path else "?"))

    @property
    def config(self) -> dict:
        """config.json's content as recorded inside results.json."""
        return self.results.get("config") or {}

    @property
    def settings(self) -> dict:
        """The RunConfig fields."""
        return self.config.get("config") or {}

    @property
    def planner(self) -> str:
        return self.results.get("systems", {}).get("planner") or self.config.get("planner", {}).get("spec", "?")

    @property
    def executor(self) -> str:
        return self.results.get("systems", {}).get("executor") or self.config.get("executor", {}).get("spec", "?")

    @property
    def planner_fingerprint(self) -> str:
        return self.config.get("planner", {}).get("fingerprint") or self.planner

    @property
    def executor_fingerprint(self) -> str:
        return self.config.get("executor", {}).get("fingerprint") or self.executor

    @property
    def tasks(self) -> list[str]:
        return list(self.results.get("metrics", {}))

    def task_info(self, task: str) -> dict:
        return self.config.get("tasks", {}).get(task, {})

    def metrics(self, task: str) -> dict:
        return self.results["metrics"][task]

    def conditions(self, task: str) -> list[str]:
        return list(self.metrics(task).get("conditions", {}))

    @property
    def has_samples(self) -> bool:
        return self.path is not None and all(_samples_file(self.path, t).exists() for t in self.tasks)

    def samples(self, task: str) -> list[SampleRecord]:
        if task not in self._samples:
            if self.path is None:
                raise DataError(f"run {self.run_id} has no run directory, so no samples for {task}",
                                "give the entry a run_dir that holds samples_<task>.jsonl")
            self._samples[task] = load_samples(self.path, task)
        return self._samples[task]

    def outcomes(self, task: str, condition: str) -> dict[str, float]:
        """Per-problem pass rate under a condition, from the samples (n = 1: 0.0 or 1.0); computed once per task,
        since a report asks for every condition of every pair of systems."""
        if task not in self._outcomes:
            self._outcomes[task] = outcomes(self.samples(task))
        return self._outcomes[task].get(condition, {})

    def n_samples(self) -> int:
        return int(self.settings.get("n_samples", 1))

    @cached_property
    def label(self) -> str:
        """A short human name: planner → executor; the named planner systems (harness/planners.py) by name."""
        system = (self.config.get("planner") or {}).get("system")
        if system == "self-planner":  # one model in both roles: named once
            return f"self-planner ({short_spec(self.executor)})"
        if system:
            return f"{system} → {short_spec(self.executor)}"
        return f"{short_spec(self.planner)} → {short_spec(self.executor)}"


def short_spec(spec: str) -> str:
    """`builtin:qwen2.5-coder-0.5b-instruct` → `qwen2.5-coder-0.5b-instruct`; paths keep their last part."""
    kind, _, target = spec.partition(":") if ":" in spec else ("", "", spec)
    target = target.split("?")[0].split("@")[0].rstrip("/")
    tail = Path(target).name or target
    return f"{kind}:{tail}" if kind in ("scripted", "openai", "hf", "vllm") else tail


def slug(text: str) -> str:
    """A file-name-safe form of a name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "system"


def _samples_file(path: Path, task: str) -> Path:
    return path / f"samples_{task.replace('/', '_')}.jsonl"


def load_run(run_dir: str | Path) -> Run:
    """Read one run directory; a missing, corrupt or foreign results file raises DataError naming the file."""
    path = Path(run_dir)
    if not path.exists():
        raise DataError(f"run directory {path} does not exist", "pass a directory written by `tl-eval` (runs/<run_id>/)")
    if path.is_file():
        path = path.parent
    return Run(path, load_results(path).to_json())


def find_run_dirs(root: str | Path) -> list[Path]:
    """A run directory itself, or every run directory (holding results.json) below a folder."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root} does not exist", "pass a run directory or a folder of run directories (e.g. runs/)")
    if (root / "results.json").exists():
        return [root]
    found = sorted(p.parent for p in root.rglob("results.json"))
    if not found:
        raise DataError(f"no results.json under {root}", "run an evaluation first (`tl-eval --planner ... --output DIR`)")
    return found


@dataclass(frozen=True)
class Skipped:
    """A run directory (or folder of them) left out, and why."""

    path: Path
    reason: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "reason": self.reason}


def load_runs_lenient(roots: list[str | Path]) -> tuple[list[Run], list[Skipped]]:
    """Every readable run under `roots`, and what was skipped: one bad directory must not hide the others.

    Skipped: a root that does not exist or holds no results.json, a results.json that is truncated or not
    tl-eval's, and a run directory below a root that has config.json but no results.json (a run that
    never finished).
    """
    paths: list[Path] = []
    skipped: list[Skipped] = []
    for root in map(Path, roots):
        try:
            paths += find_run_dirs(root)
        except DataError as e:
            skipped.append(Skipped(root, e.problem))
            continue
        if root.is_dir() and not (root / "results.json").exists():
            for config in sorted(root.rglob("config.json")):
                if not (config.parent / "results.json").exists():
                    skipped.append(Skipped(config.parent, f"no results.json in {config.parent} (the run did not "
                                                          "finish; run its command again to complete it)"))
    runs = []
    for path in dict.fromkeys(paths):
        try:
            runs.append(load_run(path))
        except DataError as e:
            skipped.append(Skipped(path, e.problem))
    return runs, skipped


def load_runs(paths: list[str | Path]) -> list[Run]:
    runs = [load_run(p) for p in paths]
    seen: dict[str, Path | None] = {}
    for r in runs:
        if r.run_id in seen:
            raise DataError(f"run {r.run_id} given twice ({seen[r.run_id]} and {r.path})", "pass each run once")
        seen[r.run_id] = r.path
    return runs


def read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{file} is not valid JSON ({e})", "fix or remove the file") from e
    if not isinstance(data, dict):
        raise DataError(f"{file} must hold a JSON object", "fix or remove the file")
    return data
