"""Custom tasks from a YAML spec: a JSONL file of code problems (assert tests) or math problems (gold answers).

```yaml
name: my-arith            # task name in results
type: math                # math | code
data: problems.jsonl      # relative to this YAML file
fields:                   # optional; JSON keys of each row (defaults shown)
  id: id                  # omit the key in rows to use the row index
  prompt: prompt
  answer: answer          # math
  tests: tests            # code: a list of assert strings
  entry_point: entry_point  # code; inferred from tests/reference when the row lacks it
  reference: reference    # optional: math solution text / code reference program
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tl_eval.harness.errors import ConfigError, DataError
from tl_eval.harness.task import Task
from tl_eval.harness.types import Problem
from tl_eval.harness.verify.code_job import CodeTest

from tl_eval.tasks.code_base import CodeTask
from tl_eval.tasks.data import read_jsonl
from tl_eval.tasks.math_base import MathTask
from tl_eval.tasks.mbpp import infer_entry_point

SPEC_KEYS = {"name", "type", "data", "fields", "description"}
FIELDS = {
    "code": {"id": "id", "prompt": "prompt", "tests": "tests", "entry_point": "entry_point",
             "reference": "reference"},
    "math": {"id": "id", "prompt": "prompt", "answer": "answer", "reference": "reference"},
}


def read_spec(path: Path) -> dict[str, Any]:
    """The validated spec: name, type, data path (resolved), field map."""
    if not path.is_file():
        raise ConfigError(f"custom task spec {path} does not exist", "pass the path of an existing .yaml spec")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"custom task spec {path} is not valid YAML: {exc}", "fix the YAML syntax") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"custom task spec {path} must be a mapping", "see docs/tasks.md for the format")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"custom task spec {path}: unknown key(s) {', '.join(sorted(unknown))}",
                          f"use only: {', '.join(sorted(SPEC_KEYS))}")
    for key in ("name", "type", "data"):
        if not spec.get(key):
            raise ConfigError(f"custom task spec {path}: missing {key!r}", "see docs/tasks.md for the format")
    if spec["type"] not in FIELDS:
        raise ConfigError(f"custom task spec {path}: type {spec['type']!r} is not code or math",
                          "set `type: code` or `type: math`")
    fields = spec.get("fields") or {}
    if not isinstance(fields, dict):
        raise ConfigError(f"custom task spec {path}: `fields` must be a mapping", "see docs/tasks.md")
    unknown = set(fields) - set(FIELDS[spec["type"]])
    if unknown:
        raise ConfigError(f"custom task spec {path}: unknown field(s) {', '.join(sorted(unknown))} "
                          f"for a {spec['type']} task", f"use only: {', '.join(FIELDS[spec['type']])}")
    return {"name": str(spec["name"]), "type": spec["type"], "data": (path.parent / spec["data"]).resolve(),
            "fields": {**FIELDS[spec["type"]], **fields}}


def _rows(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs, with DataErrors for a missing file or a row that lacks a required field."""
    data: Path = spec["data"]
    if not data.is_file():
        raise DataError(f"custom task {spec['name']}: data file {data} is missing",
                        "fix `data:` in the spec (a path relative to the YAML file)")
    rows = read_jsonl(data)
    if not rows:
        raise DataError(f"custom task {spec['name']}: {data} has no problems", "add one JSON object per line")
    required = ["prompt", "tests"] if spec["type"] == "code" else ["prompt", "answer"]
    out = []
    for i, row in enumerate(rows):
        where = f"{data} row {i + 1}"
        for key in required:
            if spec["fields"][key] not in row:
                raise DataError(f"{where}: no field {spec['fields'][key]!r} (the spec's {key} field); "
                                f"row has {', '.join(sorted(row))}", "fix `fields:` in the spec or the data")
        out.append((where, row))
    return out


def _problem_id(spec: dict[str, Any], row: dict[str, Any], index: int) -> str:
    key = spec["fields"]["id"]
    return f"{spec['name']}/{row[key] if key in row else index}"


class CustomMathTask(MathTask):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.name = spec, spec["name"]

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        f = self.spec["fields"]
        return [Problem(problem_id=_problem_id(self.spec, row, i), task=self.name, task_type="math",
                        prompt=str(row[f["prompt"]]), answer=str(row[f["answer"]]),
                        reference=row.get(f["reference"]))
                for i, (_, row) in enumerate(_rows(self.spec))]

    def source(self, data_dir: Path | None) -> str:
        return str(self.spec["data"])


class CustomCodeTask(CodeTask):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.name = spec, spec["name"]

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        f = self.spec["fields"]
        problems = []
        for i, (where, row) in enumerate(_rows(self.spec)):
            tests = row[f["tests"]]
            if isinstance(tests, str):
                tests = [tests]
            if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
                raise DataError(f"{where}: {f['tests']!r} must be a non-empty list of assert strings",
                                'write e.g. "tests": ["assert add(1, 2) == 3"]')
            reference = row.get(f["reference"])
            entry = row.get(f["entry_point"]) or infer_entry_point(tests, reference)
            if not entry:
                raise DataError(f"{where}: cannot tell which function the tests call",
                                f"add an {f['entry_point']!r} field to the row")
            problems.append(Problem(problem_id=_problem_id(self.spec, row, i), task=self.name, task_type="code",
                                    prompt=str(row[f["prompt"]]), reference=reference, entry_point=entry,
                                    metadata={"tests": tests}))
        return problems

    def source(self, data_dir: Path | None) -> str:
        return str(self.spec["data"])

    def tests(self, problem: Problem) -> tuple[CodeTest, ...]:
        return tuple(CodeTest(f"test_{i}", t) for i, t in enumerate(problem.metadata["tests"], 1))

    def context(self, problem: Problem) -> str:
        return (problem.reference or "") + "\n"


def custom_task(path: str | Path | None = None) -> Task:
    """The task a YAML spec describes (`get_task("spec.yaml")`)."""
    if path is None:
        raise ConfigError("the custom task needs a spec", "pass the path of a .yaml spec instead of 'custom'")
    spec = read_spec(Path(path))
    return CustomCodeTask(spec) if spec["type"] == "code" else CustomMathTask(spec)
