"""Read traces to score from a samples JSONL: a tl-eval run's `samples_<task>.jsonl`, or lines that carry
their own `prompt` and `task_type`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tl_eval.harness.config import default_data_dir
from tl_eval.harness.errors import DataError
from tl_eval.harness.task import Task, get_task
from tl_eval.training.groups.schema import RUBRIC_DIMS

RUBRIC_TYPES = tuple(RUBRIC_DIMS)  # the task types the reason RM has a rubric for

REQUIRED = ("problem_id", "trace")


@dataclass(frozen=True)
class SampleTrace:
    problem_id: str
    prompt: str
    trace: str
    task_type: str
    line: int
    condition: str | None = None
    sample_index: int | None = None


def read_samples(path: str | Path, data_dir: str | Path | None = None) -> list[SampleTrace]:
    """Every line with a trace; lines of conditions other than `full` (when present) are skipped.

    Lines without `prompt`/`task_type` (a run's samples) get them from their `task`, loaded from `data_dir`,
    else from the data folder recorded in the run's `config.json`, else the default data folder."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"samples file {path} does not exist", "pass a samples_<task>.jsonl from a run directory")
    out, tasks = [], _RunTasks(path, data_dir)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})", "each line must be one JSON object") from exc
            missing = [k for k in REQUIRED if k not in raw]
            if "prompt" not in raw and "task" not in raw:
                missing.append("prompt (or task)")
            if missing:
                raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}",
                                "pass a run's samples_<task>.jsonl, or lines with problem_id, trace, prompt, task_type")
            # The trace is the same under every condition; score it once, from the `full` line.
            if raw.get("condition") not in (None, "full") or raw["trace"] is None:
                continue
            if "prompt" in raw:
                prompt, task_type = str(raw["prompt"]), raw.get("task_type")
            else:
                prompt, task_type = tasks.prompt(str(raw["task"]), str(raw["problem_id"]), f"{path}:{lineno}")
            if task_type not in RUBRIC_TYPES:
                raise DataError(f"{path}:{lineno}: task_type {task_type!r} is not one of {', '.join(RUBRIC_TYPES)}",
                                "fix the task_type field")
            out.append(SampleTrace(str(raw["problem_id"]), prompt, str(raw["trace"]), task_type,
                                   lineno, raw.get("condition"), raw.get("sample_index")))
    return out


class _RunTasks:
    """Problem prompts of the tasks a run's samples name, loaded once per task."""

    def __init__(self, samples: Path, data_dir: str | Path | None):
        self.samples, self.given_data_dir = samples, data_dir
        self.prompts: dict[str, tuple[dict[str, str], str]] = {}

    @cached_property
    def run(self) -> dict:
        """The run's settings from the `config.json` beside the samples; read only when a line needs them."""
        config = self.samples.parent / "config.json"
        if not config.is_file():
            return {}
        try:
            return json.loads(config.read_text()).get("config", {})
        except json.JSONDecodeError as exc:
            raise DataError(f"{config}: not valid JSON ({exc.msg})", "pass --data-dir, or restore the run's config.json") from exc

    @cached_property
    def data_dir(self) -> Path | None:
        recorded = self.given_data_dir or self.run.get("data_dir")
        return Path(recorded) if recorded else default_data_dir()

    def _task(self, name: str) -> Task:
        # A custom task is recorded under its spec path in the run's config; match it by name.
        for spec in self.run.get("tasks", []):
            if str(spec).endswith((".yaml", ".yml")):
                task = get_task(str(spec))
                if task.name == name:
                    return task
        return get_task(name)

    def prompt(self, task: str, problem_id: str, where: str) -> tuple[str, str]:
        if task not in self.prompts:
            t = self._task(task)
            self.prompts[task] = ({p.problem_id: p.prompt for p in t.load(self.data_dir)}, t.task_type)
        prompts, task_type = self.prompts[task]
        if problem_id not in prompts:
            raise DataError(f"{where}: problem {problem_id!r} is not in task {task!r} (data from {self.data_dir})",
                            "pass --data-dir with the data the run was evaluated on")
        return prompts[problem_id], task_type


def by_task_type(items, key=lambda item: item.task_type) -> dict:
    """Items grouped by task type, in sorted type order: the RM's rubric and prompt prefix differ by type."""
    groups: dict = {}
    for item in sorted(items, key=key):
        groups.setdefault(key(item), []).append(item)
    return groups
