"""`tl-eval export --format lm-eval`: a tl-eval run in lm-eval's results layout, read by lm-eval's own helpers."""

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tl_eval.harness.config import RunConfig
from tl_eval.harness.errors import DataError
from tests.fixtures.lmeval import helpers
from tl_eval.lmeval.cli import export
from tl_eval.lmeval.export import export_run

helpers.load_scripted()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tl_eval.harness.evaluate import prepare, run

    data = Path(helpers.load_scripted().DATA)
    if not (data / "gsm8k" / "test.jsonl").exists():
        pytest.skip("benchmark data not found (set TL_EVAL_DATA_DIR)")
    out = tmp_path_factory.mktemp("runs")
    cfg = RunConfig(tasks=["gsm8k"], planner="scripted:lmx-oracle-planner", executor="scripted:lmx-formats",
                    limit=5, data_dir=str(data), cache="off", output=str(out))
    path, _ = run(prepare(cfg), show_progress=False, log=lambda m: None)
    return path


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_export_writes_lm_eval_files_that_its_helpers_read(run_dir, tmp_path):
    lm_utils = pytest.importorskip("lm_eval.utils")
    exp = export_run(run_dir, tmp_path)
    files = [str(p) for p in exp.model_dir.iterdir()]
    (results_file,) = lm_utils.get_results_filenames(files)
    (samples_file,) = lm_utils.get_sample_results_filenames(files)
    assert lm_utils.get_file_task_name(Path(samples_file).name) == "gsm8k"
    stamp = lm_utils.get_file_datetime(Path(samples_file).name)
    assert Path(results_file).name == f"results_{stamp}.json" and lm_utils.get_latest_filename(files) in files
    assert exp.model_dir.name == lm_utils.sanitize_model_name(run_dir.name)

    data = json.loads(Path(results_file).read_text())
    for key in ("results", "configs", "versions", "n-samples", "config", "n-shot", "higher_is_better",
                "group_subtasks", "task_hashes", "model_name", "model_name_sanitized", "date"):
        assert key in data, key
    res = data["results"]["gsm8k"]
    tl = json.loads((run_dir / "results.json").read_text())["results"]["gsm8k"]
    assert res["pass@1,full"] == tl["pass@1,full"] == pytest.approx(4 / 5)  # tl-eval reads 4 of the 5 formats
    assert res["pass@1,none"] == 0.0 and res["uplift,full"] == pytest.approx(4 / 5)
    assert res["pass@1_stderr,full"] == pytest.approx((0.8 * 0.2 * 5 / 4) ** 0.5 / 5 ** 0.5)
    assert data["n-samples"]["gsm8k"] == {"original": 1319, "effective": 5}
    assert data["config"]["model"] == "tl-pair" and data["config"]["model_args"]["executor"] == "scripted:lmx-formats"
    table = lm_utils.make_table(data)  # lm-eval's own results table renders it
    assert "pair_pass@1" in table and "uplift" in table

    rows = [json.loads(line) for line in Path(samples_file).read_text().splitlines()]
    assert len(rows) == 5 * 2  # problems x conditions (lm-eval: docs x filters)
    assert {r["filter"] for r in rows} == {"full", "none"}
    for r in rows:
        prompt = r["arguments"]["gen_args_0"]["arg_0"]
        assert r["prompt_hash"] == _sha(prompt) and r["target_hash"] == _sha(r["target"])
        assert r["doc_hash"] == _sha(json.dumps(r["doc"], indent=2, ensure_ascii=False))
        assert r["doc"]["problem_id"] == f"gsm8k/{r['doc_id']}" and r["doc"]["prompt"] in prompt
        logged = r["arguments"]["gen_args_0"]["arg_2"]["tl_pair"]
        assert logged["condition"] == r["filter"]
        assert ("Provided reasoning:" in prompt) == (r["filter"] == "full")
    full = {r["doc_id"]: r for r in rows if r["filter"] == "full"}
    assert [full[i]["pass@1"] for i in range(5)] == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert full[1]["filtered_resps"] == [full[1]["target"]]  # \boxed{N}: tl-eval extracted the gold
    expected_hash = _sha("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
    assert data["task_hashes"]["gsm8k"] == expected_hash

    # Hub tooling loads samples files with `datasets`' json builder.
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("json", data_files=samples_file, split="train")
    assert loaded.num_rows == 10


def test_export_matches_the_shape_lm_eval_writes(run_dir, tmp_path, data_dir):
    """Key sets of the exported files against files lm-eval's EvaluationTracker writes for a tl-pair run."""
    pytest.importorskip("lm_eval")
    from lm_eval.loggers import EvaluationTracker

    out = helpers.simple_evaluate(helpers.write_task_dir(tmp_path, data_dir),
                                  {"planner": "scripted:lmx-oracle-planner", "executor": "scripted:lmx-formats",
                                   "cache": "off"}, limit=2)
    samples = out.pop("samples")
    tracker = EvaluationTracker(output_path=str(tmp_path / "lm"))
    tracker.general_config_tracker.log_experiment_args("tl-pair", {}, None, None, False)
    tracker.save_results_aggregated(results=out, samples=samples)
    tracker.save_results_samples(task_name=helpers.TASK_NAME, samples=samples[helpers.TASK_NAME])
    (real_dir,) = (tmp_path / "lm").iterdir()
    real_results = json.loads(next(real_dir.glob("results_*.json")).read_text())
    real_row = json.loads(next(real_dir.glob("samples_*.jsonl")).read_text().splitlines()[0])

    exp = export_run(run_dir, tmp_path / "exported")
    ours = json.loads(exp.results_path.read_text())
    env_only = {"pretty_env_info", "transformers_version", "lm_eval_version", "upper_git_hash"}
    assert set(real_results) - env_only <= set(ours)
    assert set(real_results["results"][helpers.TASK_NAME]) >= {"name", "alias", "sample_len"}
    assert {"name", "alias", "sample_len"} <= set(ours["results"]["gsm8k"])
    our_row = json.loads(exp.samples_paths["gsm8k"].read_text().splitlines()[0])
    fixed = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
             "doc_hash", "prompt_hash", "target_hash"}
    assert fixed <= set(real_row) and fixed <= set(our_row)
    assert set(real_row["arguments"]["gen_args_0"]) == set(our_row["arguments"]["gen_args_0"]) == {
        "arg_0", "arg_1", "arg_2"}
    assert set(real_row["arguments"]["gen_args_0"]["arg_2"]["tl_pair"]) == set(
        our_row["arguments"]["gen_args_0"]["arg_2"]["tl_pair"])


def test_reexport_rewrites_the_same_files(run_dir, tmp_path):
    first = export_run(run_dir, tmp_path)
    content = first.results_path.read_text(), first.samples_paths["gsm8k"].read_text()
    second = export_run(run_dir, tmp_path)
    assert second.results_path == first.results_path
    assert (second.results_path.read_text(), second.samples_paths["gsm8k"].read_text()) == content
    assert len(list(first.model_dir.iterdir())) == 2


def test_cli_export_and_its_errors(run_dir, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(export, ["--format", "lm-eval", str(run_dir), "--output", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "results_" in ok.output and "samples (gsm8k)" in ok.output
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    bad = runner.invoke(export, [str(empty)])
    assert bad.exit_code == 2 and "no results.json" in bad.output and "fix:" in bad.output
    wrong_data = runner.invoke(export, [str(run_dir), "--output", str(tmp_path / "p"),
                                        "--data-dir", str(tmp_path / "nowhere")])
    assert wrong_data.exit_code == 2 and "--data-dir" in wrong_data.output


def test_export_refuses_a_run_without_its_creation_time(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    results = json.loads((copy / "results.json").read_text())
    results["config"]["created"] = None
    (copy / "results.json").write_text(json.dumps(results))
    with pytest.raises(DataError, match="created"):
        export_run(copy, tmp_path / "o")


def test_tl_eval_lm_eval_passes_arguments_to_lm_eval():
    pytest.importorskip("lm_eval")
    from tl_eval.lmeval.cli import lm_eval_cmd

    result = CliRunner().invoke(lm_eval_cmd, ["run", "--help"])
    assert result.exit_code == 0, result.output
    assert "--model_args" in result.output and "--include_path" in result.output
    from lm_eval.api.registry import get_model

    assert get_model("tl-pair").__name__ == "TLPairLM"
