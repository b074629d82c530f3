"""The terminal run summary reads at a glance in a 100-column terminal: one line per task, nothing cut."""

import io
import re

from rich.console import Console

import tests.scripted_models  # noqa: F401  (registers the scripted models)
from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.summary import print_summary


def test_summary_fits_100_columns_without_wrapping(tmp_path, data_dir):
    cfg = RunConfig(tasks=["gsm8k", "math500"], planner="scripted:vague-planner", executor="scripted:follower",
                    limit=5, conditions=["faithfulness"], output=str(tmp_path / "runs"),
                    cache=str(tmp_path / "cache.sqlite"))
    run_dir, result = run(prepare(cfg), show_progress=False, log=lambda m: None)
    out = io.StringIO()
    print_summary(result, str(run_dir), Console(file=out, width=100, color_system=None, legacy_windows=False))
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in text  # nothing truncated
    for task, m in result.tasks.items():
        rows = [line for line in lines if re.match(rf"\s*{task}\s+\d+\s", line)]
        assert len(rows) == 1, rows  # the task's row holds every headline figure and its CI: no cell wrapped
        row = rows[0]
        assert row.count("[") == 4 and row.count("]") == 4  # pair, exec, uplift and uplift_masked CIs
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(m.conditions["full"].status_counts.items()))
        assert any(line.startswith(f"{task}: statuses (full) {statuses}") for line in lines), text
