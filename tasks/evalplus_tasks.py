"""HumanEval+ and MBPP+ through evalplus's own loaders; tests compare with the reference on every input."""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import os
import pickle
from pathlib import Path
from typing import Any

from tl_eval.harness.errors import DataError
from tl_eval.harness.types import Problem
from tl_eval.harness.verify.code_job import CodeTest

from tl_eval.tasks import plus_oracle
from tl_eval.tasks.code_base import CodeTask
from tl_eval.tasks.data import read_jsonl


def literal(value: Any) -> str:
    """Python source that rebuilds `value`: its repr when that round-trips exactly, else a pickle."""
    text = repr(value)
    try:
        if ast.literal_eval(text) == value and _same_types(ast.literal_eval(text), value):
            return text
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    # inf, nan, set(), complex and other values without a literal form; the test code is trusted.
    return f"__import__('pickle').loads(bytes.fromhex({pickle.dumps(value).hex()!r}))"


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return all(_same_types(k, k2) and _same_types(a[k], b[k2]) for k, k2 in zip(a, b))
    return True


class PlusTask(CodeTask):
    """Differential testing against the canonical solution, as evalplus does; one CodeTest per input."""

    dataset: str  # "humaneval" | "mbpp", the name evalplus's special oracles use
    env_var: str
    file_stem: str

    def _loader(self):
        raise NotImplementedError

    def _override_module(self):
        raise NotImplementedError

    def _override_path(self, data_dir: Path | None) -> str | None:
        # evalplus reads its override variable once at import; read it again so that a later setting counts.
        if os.environ.get(self.env_var):
            return os.environ[self.env_var]
        if data_dir is not None:
            for name in (f"{self.file_stem}.jsonl", f"{self.file_stem}.jsonl.gz"):
                if (Path(data_dir) / "evalplus" / name).is_file():
                    return str(Path(data_dir) / "evalplus" / name)
        return None

    def load(self, data_dir: Path | None, split: str = "test") -> list[Problem]:
        if split != "test":
            raise DataError(f"{self.name} has only a 'test' split, not {split!r}", "use split 'test'")
        rows = self._read(data_dir)
        return [self._problem(row) for row in rows.values()]

    def _read(self, data_dir: Path | None) -> dict[str, dict]:
        try:
            module = self._override_module()
        except ImportError:
            raise DataError(f"{self.name} needs the evalplus package", "pip install 'tl-eval[plus]'") from None
        path = self._override_path(data_dir)
        if path is not None and not Path(path).is_file():
            raise DataError(f"{self.name} data file {path} is missing", f"point {self.env_var} at an existing file")
        attr = self.env_var
        saved = getattr(module, attr)
        setattr(module, attr, path)
        try:
            with contextlib.redirect_stdout(None):  # evalplus prints download progress
                return self._loader()()
        except json.JSONDecodeError:
            if path is not None:
                read_jsonl(Path(path))  # raises DataError naming file:line
            raise DataError(f"{self.name}: evalplus's cached copy is malformed",
                            f"delete the evalplus cache folder or set {self.env_var}") from None
        except AssertionError as exc:
            raise DataError(f"{self.name} data in {path or 'the evalplus cache'} is incomplete: {exc}",
                            "use a file in evalplus's published schema") from None
        except OSError as exc:  # URLError, DNS failure: evalplus downloads its release files on first use
            raise DataError(f"cannot get {self.name} data: {exc}",
                            f"set {self.env_var}=FILE ({self.file_stem}.jsonl[.gz]), put it under "
                            f"--data-dir DIR as evalplus/{self.file_stem}.jsonl, or go online") from None
        finally:
            setattr(module, attr, saved)

    def _problem(self, row: dict) -> Problem:
        for key in ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input"):
            if key not in row:
                raise DataError(f"{self.name} item {row.get('task_id', '?')}: missing field {key!r}",
                                "use a file in evalplus's published schema")
        return Problem(
            problem_id=row["task_id"], task=self.name, task_type="code", prompt=row["prompt"],
            reference=row["prompt"] + row["canonical_solution"], entry_point=row["entry_point"],
            metadata={"signature_prompt": self.dataset == "humaneval", "base_input": row["base_input"],
                      "plus_input": row["plus_input"], "atol": row.get("atol") or 0},
        )

    def source(self, data_dir: Path | None) -> str:
        path = self._override_path(data_dir)
        return path if path else f"evalplus release {self.file_stem} (evalplus cache, downloaded on first use)"

    def oracle(self, entry_point: str) -> str:
        """Which of evalplus's special output rules applies to this entry point ("" for plain equality)."""
        from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS

        if self.dataset == "humaneval":
            return "find_zero" if entry_point == "find_zero" else ""
        named = {"are_equivalent": "always", "sum_div": "sum_div", "surface_Area": "surface_Area",
                 "digit_distance_nums": "digit_distance_nums"}
        if entry_point in named:
            return named[entry_point]
        if entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
            return "set"
        return "not_none" if entry_point in MBPP_OUTPUT_NOT_NONE_TASKS else ""

    def tests(self, problem: Problem) -> tuple[CodeTest, ...]:
        cap = self.options.get("plus_max_inputs")
        plus = problem.metadata["plus_input"]
        plus = plus if cap is None else plus[: int(cap)]
        entry, atol, oracle = problem.entry_point, problem.metadata["atol"], self.oracle(problem.entry_point or "")
        out = []
        for kind, inputs in (("base", problem.metadata["base_input"]), ("plus", plus)):
            for i, inp in enumerate(inputs):
                code = (f"_tl_in = {literal(inp)}\n"
                        f"_tl_exp = _tl_ref(*_tl_copy(_tl_in))\n"
                        f"assert _tl_matches({entry}(*_tl_copy(_tl_in)), _tl_exp, {atol!r}, {oracle!r}, _tl_in)\n")
                out.append(CodeTest(f"{kind}_{i}", code))
        return tuple(out)

    def context(self, problem: Problem) -> str:
        from evalplus.eval import _special_oracle

        # The reference runs in its own namespace, so that the candidate's definitions (which replace the
        # entry point in the shared globals) cannot change the expected outputs.
        return "\n".join([
            inspect.getsource(_special_oracle),
            inspect.getsource(plus_oracle),
            "_tl_ref_ns = {}",
            f"exec(compile({problem.reference!r}, '<reference>', 'exec'), _tl_ref_ns)",
            f"_tl_ref = _tl_ref_ns[{problem.entry_point!r}]",
            problem.reference or "",  # helpers the prompt defines (e.g. HumanEval's poly) for the candidate
        ]) + "\n"


class HumanEvalPlusTask(PlusTask):
    name = "humaneval_plus"
    dataset = "humaneval"
    env_var = "HUMANEVAL_OVERRIDE_PATH"
    file_stem = "HumanEvalPlus"

    def _override_module(self):
        import evalplus.data.humaneval as module

        return module

    def _loader(self):
        from evalplus.data import get_human_eval_plus

        return get_human_eval_plus


class MbppPlusTask(PlusTask):
    name = "mbpp_plus"
    dataset = "mbpp"
    env_var = "MBPP_OVERRIDE_PATH"
    file_stem = "MbppPlus"

    def _override_module(self):
        import evalplus.data.mbpp as module

        return module

    def _loader(self):
        from evalplus.data import get_mbpp_plus

        return get_mbpp_plus
