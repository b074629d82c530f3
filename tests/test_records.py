"""The typed records' JSON readers: round trips, version 1 run directories, and clear errors for foreign files."""

from __future__ import annotations

import json

import pytest

import tests.scripted_models  # noqa: F401  (registers the scripted models)
from tl_eval.harness.config import RunConfig
from tl_eval.harness.errors import DataError
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.records import SCHEMA_VERSION, RunResult, SampleRecord
from tl_eval.harness.results import load_results, load_samples
from tl_eval.reports.load import load_run


@pytest.fixture
def run_dir(tmp_path, data_dir):
    cfg = RunConfig(tasks=["gsm8k"], planner="scripted:oracle-planner", executor="scripted:follower", limit=3,
                    conditions=["full", "none", "masked"], output=str(tmp_path / "runs"), cache="off")
    path, _ = run(prepare(cfg), show_progress=False, log=lambda m: None)
    return path


def test_records_round_trip(run_dir):
    result = load_results(run_dir)
    assert result.schema_version == SCHEMA_VERSION
    assert RunResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    for r in load_samples(run_dir, "gsm8k"):
        assert SampleRecord.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_a_version_1_run_directory_loads_upgraded(run_dir):
    # Version 1 called the harness's rm × uplift figures "tracelift_score", like the trainer's reward.
    doc = json.loads((run_dir / "results.json").read_text())
    doc["schema_version"] = 1
    doc["metrics"]["gsm8k"]["rm"] = {"mean_score": {"full": 0.5}, "tracelift_score_mean": 0.25,
                                     "tracelift_score_task": 0.5}
    (run_dir / "results.json").write_text(json.dumps(doc))
    rows = [json.loads(line) for line in (run_dir / "samples_gsm8k.jsonl").read_text().splitlines()]
    rows[0].update(rm_score=0.5, tracelift_score=0.5)
    (run_dir / "samples_gsm8k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    result = load_results(run_dir)
    assert result.schema_version == 1
    assert result.tasks["gsm8k"].rm == {"mean_score": {"full": 0.5}, "rm_lift_mean": 0.25, "rm_uplift": 0.5}
    assert load_samples(run_dir, "gsm8k")[0].rm_lift == 0.5
    assert load_run(run_dir).results["schema_version"] == SCHEMA_VERSION  # reports see the current layout


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version=99), "version 99"),
    (lambda d: d.update(schema="lm-eval/results"), "'lm-eval/results'"),
    (lambda d: d.pop("metrics"), "lacks metrics"),
    (lambda d: d["metrics"]["gsm8k"].update(surprise=1), "unknown fields ['surprise']"),
])
def test_foreign_results_are_refused_by_name(run_dir, change, message):
    doc = json.loads((run_dir / "results.json").read_text())
    change(doc)
    (run_dir / "results.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        load_results(run_dir)
    assert str(run_dir / "results.json") in e.value.problem


def test_a_foreign_sample_line_names_file_and_line(run_dir):
    path = run_dir / "samples_gsm8k.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    row["verdict_from_elsewhere"] = True
    lines[1] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 2: .*verdict_from_elsewhere"):
        load_samples(run_dir, "gsm8k")
