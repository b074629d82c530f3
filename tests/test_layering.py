"""The code's shape: what differs by kind of task lives on the task, and the harness imports nothing above it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_TASKS = ("harness", "training", "reports", "lmeval")
# `x.task_type == "code"`, `task_type != ...`, `task_type in ("math", ...)`, `"math" == task_type`.
SWITCH = re.compile(r"task_type\s*(==|!=)|task_type\s+(not\s+)?in\s*[\(\[{]|[\"'](math|code)[\"']\s*(==|!=)\s*[\w.]*task_type")


def _sources(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_task_type_switch_outside_tasks():
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in _sources(*OUTSIDE_TASKS)
            for n, line in enumerate(path.read_text().splitlines(), 1) if SWITCH.search(line)]
    assert not hits, "behaviour that depends on the kind of task belongs on the Task:\n" + "\n".join(hits)


@pytest.mark.parametrize("line", ['if task.task_type == "code":', "kinds = A if task_type == 'math' else B",
                                  'if problem.task_type in ("math", "code"):', '"math" != p.task_type'])
def test_the_switch_pattern_finds_switches(line):
    assert SWITCH.search(line)


def test_the_harness_imports_nothing_above_it():
    above = re.compile(r"^\s*(from|import)\s+tl_eval\.(tasks|training|reports|lmeval)\b", re.MULTILINE)
    hits = [str(p.relative_to(ROOT)) for p in _sources("harness") if above.search(p.read_text())]
    assert not hits, f"the harness must not import tasks, training, reports or lmeval: {hits}"


def test_one_namespace_and_every_package_folder_installed():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    mapping = project["tool"]["setuptools"]["package-dir"]
    assert all(name.startswith("tl_eval.") for name in listed), "everything installs under tl_eval"
    on_disk = {f"tl_eval.{init.parent.relative_to(ROOT)}".replace("/", ".")
               for folder in (ROOT / d for d in mapping.values()) for init in folder.rglob("__init__.py")}
    assert on_disk == listed, "a package folder is missing from (or stale in) pyproject's packages list"


def test_lm_eval_models_entry_point_names_the_registered_pair():
    from importlib.metadata import entry_points

    pytest.importorskip("lm_eval")
    (ep,) = [e for e in entry_points(group="lm_eval.models") if e.name == "tl-pair"]
    from lm_eval.api.registry import get_model

    assert ep.load() is get_model("tl-pair")
