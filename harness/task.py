"""The Task interface that benchmark adapters implement, and the registry the CLI resolves names with.

Adapters live in the top-level `tasks` package, which registers them through the `tl_eval.tasks`
entry-point group; the harness never imports a concrete task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from harness.errors import ConfigError
from harness.types import Message, Problem, TaskType, Verdict


class Task(ABC):
    """A benchmark: loads problems, builds prompts, extracts artifacts, and verifies them."""

    name: str
    task_type: TaskType

    def configure(self, **options) -> None:
        """Verifier options from the run config (sandbox limits and tier, math pipeline, grader timeout)."""
        self.options = {**getattr(self, "options", {}), **options}

    @abstractmethod
    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        """All problems, in a stable order, with stable ids. Raise DataError naming the fix if unreachable."""

    @abstractmethod
    def source(self, data_dir: Path | None) -> str:
        """Where `load` would read from, for `tl-eval tasks` and config.json (no loading)."""

    def size(self, data_dir: Path | None) -> int | None:
        """Number of problems, if cheaply known."""
        return None

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

    def reference_artifact(self, problem: Problem) -> str | None:
        """What a perfect executor would produce (selfcheck runs it through `verify`)."""
        return problem.reference if self.task_type == "code" else problem.answer

    def close(self) -> None:
        """Release verifier resources (sandbox workers, process pools)."""


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
