"""MBPP (full, test split = task ids 11-510) and its hand-verified sanitized subset."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem
from tl_eval.harness.verify.code_job import CodeTest

from tl_eval.tasks.code_base import CodeTask
from tl_eval.tasks.code_extract import parse
from tl_eval.tasks.data import load_hub, read_json_list, read_jsonl, require_fields, require_file

# Task-id ranges of the splits, from the MBPP paper (Austin et al. 2021).
SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}


def split_range(split: str) -> tuple[int, int]:
    if split not in SPLITS:
        raise DataError(f"MBPP has no split {split!r}", f"use one of: {', '.join(SPLITS)}")
    return SPLITS[split]


def infer_entry_point(tests: list[str], reference: str | None) -> str | None:
    """The function the tests call: the first name defined by the reference that the tests call, else the first call."""
    called: list[str] = []
    for test in tests:
        try:
            tree = parse(test)
        except SyntaxError:
            continue
        called += [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    defined: set[str] = set()
    if reference:
        try:
            defined = {n.name for n in parse(reference).body
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        except SyntaxError:
            pass
    for name in called:
        if name in defined:
            return name
    return next((name for name in called if not hasattr(builtins, name)), None)


def mbpp_prompt(text: str, first_test: str) -> str:
    """The task text plus the first test, which shows the expected signature (as the MBPP paper prompts)."""
    return f"{text.strip()}\nYour code should pass this test:\n{first_test.strip()}"


class MbppTask(CodeTask):
    """MBPP full: `{text, code, task_id, test_setup_code, test_list}`."""

    name = "mbpp"
    rel = "mbpp/mbpp.jsonl"
    hub = ("google-research-datasets/mbpp", "full")
    text_field = "text"

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        low, high = split_range(split)
        if data_dir is None:
            rows = load_hub(*self.hub, split=split, rel=self.rel)
            where = lambda i: f"{self.hub[0]} row {i}"  # noqa: E731
        else:
            path = require_file(data_dir, self.rel)
            rows = read_jsonl(path) if path.suffix != ".json" else read_json_list(path)
            where = lambda i: f"{path} item {i + 1}"  # noqa: E731
        problems = []
        for i, row in enumerate(rows):
            require_fields(row, ("task_id", self.text_field, "code", "test_list"), where(i))
            if low <= int(row["task_id"]) <= high:
                problems.append(self._problem(row, where(i)))
        return sorted(problems, key=lambda p: p.metadata["task_id"])

    def _problem(self, row: dict, where: str) -> Problem:
        tests = [t for t in row["test_list"] if t.strip()]
        if not tests:
            raise DataError(f"{where}: task {row['task_id']} has no tests", "use the published MBPP file")
        imports = "\n".join(row.get("test_imports") or [])
        entry = infer_entry_point(tests, row["code"])
        if entry is None:
            raise DataError(f"{where}: cannot tell which function task {row['task_id']} tests",
                            "use the published MBPP file")
        return Problem(
            problem_id=f"{self.name}/{row['task_id']}", task=self.name, task_type="code",
            prompt=mbpp_prompt(row[self.text_field], tests[0]),
            reference=(imports + "\n" if imports else "") + row["code"].replace("\r\n", "\n"),
            entry_point=entry,
            metadata={"task_id": int(row["task_id"]), "test_list": tests,
                      "test_setup_code": (row.get("test_setup_code") or "").replace("\r\n", "\n"),
                      "test_imports": list(row.get("test_imports") or [])},
        )

    def source(self, data_dir: Path | None) -> str:
        if data_dir is None:
            return f"hub:{self.hub[0]} ({self.hub[1]})"
        return str(Path(data_dir) / self.rel)

    def size(self, data_dir: Path | None) -> int | None:
        return 500 if self.name == "mbpp" else None

    def tests(self, problem: Problem) -> tuple[CodeTest, ...]:
        return tuple(CodeTest(f"test_{i}", t) for i, t in enumerate(problem.metadata["test_list"], 1))

    def context(self, problem: Problem) -> str:
        # Reference before the setup code: MBPP's setup builds objects (e.g. `Node`) that the reference defines.
        parts = [*problem.metadata["test_imports"], problem.reference or "", problem.metadata["test_setup_code"]]
        return "\n".join(p for p in parts if p.strip()) + "\n"


class MbppSanitizedTask(MbppTask):
    """MBPP sanitized: `{task_id, prompt, code, test_imports, test_list}`, the ids of the test split."""

    name = "mbpp_sanitized"
    rel = "mbpp/sanitized-mbpp.json"
    hub = ("google-research-datasets/mbpp", "sanitized")
    text_field = "prompt"
