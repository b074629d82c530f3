"""A run directory's files as JSON, the way a user's script reads them: tests assert on the published format."""

from __future__ import annotations

from tl_eval.harness.results import load_results, load_samples


def results_json(run_dir) -> dict:
    """results.json through the reader (so a version 1 file is upgraded), as JSON."""
    return load_results(run_dir).to_json()


def sample_rows(run_dir, task: str) -> list[dict]:
    return [r.to_json() for r in load_samples(run_dir, task)]
