"""The evaluation spine end to end with scripted models: results, cache reuse, resume, bad input."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import tests.scripted_models  # noqa: F401  (registers the scripted models)
from tl_eval.harness.cli import main
from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.results import load_results, load_samples

REPO = Path(__file__).resolve().parents[1]


def evaluate(tmp_path, **kw):
    cfg = RunConfig(**{"tasks": ["gsm8k"], "planner": "scripted:oracle-planner", "executor": "scripted:follower",
                       "limit": 6, "output": str(tmp_path / "runs"), "cache": str(tmp_path / "cache.sqlite"), **kw})
    return run(prepare(cfg), show_progress=False, log=lambda m: None)


def test_oracle_trace_lifts_the_executor(tmp_path, data_dir):
    run_dir, results = evaluate(tmp_path)
    m = results.tasks["gsm8k"]
    assert m.pass1("full") == 1.0
    assert m.pass1("none") == 0.0
    assert m.uplift["uplift"] == 1.0 and m.uplift["p_value"] < 0.05
    assert results.to_json()["results"]["gsm8k"]["uplift,full"] == 1.0
    assert m.leakage_rate.value == 1.0  # the oracle states the answer: caught as leakage
    assert m.tag_compliance.value == 1.0
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results.to_json()))
    assert load_results(run_dir) == results  # the reader gives back what the writer wrote
    samples = load_samples(run_dir, "gsm8k")
    assert len(samples) == 6 * 2
    assert {s.condition for s in samples} == {"full", "none"}
    assert all(s.executor_trace is None for s in samples if s.condition == "none")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["tasks"]["gsm8k"]["problem_ids"] == [f"gsm8k/{i}" for i in range(6)]


def test_rerun_makes_zero_model_calls_and_same_results(tmp_path, data_dir):
    _, first = evaluate(tmp_path)
    _, second = evaluate(tmp_path)
    assert first.model_calls == {"planner": 6, "executor": 12}
    assert second.model_calls == {"planner": 0, "executor": 0}
    assert second.to_json()["results"] == first.to_json()["results"]


def test_executor_alone_is_reused_by_a_second_planner(tmp_path, data_dir):
    evaluate(tmp_path)
    _, other = evaluate(tmp_path, planner="scripted:vague-planner")
    assert other.model_calls["executor"] == 6  # only the `full` condition is new
    cost = other.tasks["gsm8k"].cost["stages"]
    assert cost["execute:none"]["cache_hits"] == 6 and cost["execute:none"]["model_calls"] == 0


def test_n_samples_gives_pass_at_k_and_sign_test(tmp_path, data_dir):
    _, results = evaluate(tmp_path, n_samples=3, temperature=0.7, k=[1, 2, 5])
    m = results.tasks["gsm8k"]
    assert set(m.conditions["full"].pass_at_k) == {"1", "2"}  # k=5 > n is not reported
    assert m.uplift["test"] == "sign_test"


def test_faithfulness_conditions_run_and_are_scored(tmp_path, data_dir):
    _, results = evaluate(tmp_path, conditions=["faithfulness"])
    m = results.tasks["gsm8k"]
    assert set(m.conditions) == {"full", "none", "truncated@0.25", "truncated@0.5", "truncated@0.75",
                                    "corrupted", "filler", "mismatched", "masked"}
    f = m.faithfulness
    # The follower copies the trace's last number: dropping or changing the trace changes the outcome.
    assert f["trace_credited_success"]["value"] == 1.0
    assert f["mismatch_drop"]["value"] > 0.5
    assert f["early_answering_aoc"]["value"] > 0.2
    assert "execute:corrupted" in m.cost["stages"]


def _cli(args, env=None, **kw):
    cmd = [sys.executable, "-c", "import tests.scripted_models; from harness.cli import main; main()", *args]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _comparable(samples):
    drop = {"executor_cached", "verify_seconds"}
    return sorted((json.dumps({k: v for k, v in s.to_json().items() if k not in drop}, sort_keys=True)
                   for s in samples))


def _stored(path) -> int:
    try:
        return sqlite3.connect(path).execute("SELECT count(*) FROM generations").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_kill_9_then_resume_gives_the_uninterrupted_results(tmp_path, data_dir):
    common = ["--planner", "scripted:slow-planner", "--executor", "scripted:slow-follower", "--tasks", "gsm8k",
              "--limit", "8", "--quiet", "--run-id", "r"]
    # Uninterrupted reference run with its own cache.
    ref = _cli([*common, "--output", str(tmp_path / "ref"), "--cache", str(tmp_path / "ref.sqlite")],
               env={"TL_TEST_DELAY": "0"})
    assert ref.wait(120) == 0, ref.stderr.read()

    args = [*common, "--output", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")]
    victim = _cli(args, env={"TL_TEST_DELAY": "0.2"})
    done, deadline = 0, time.time() + 120
    while done < 5 and time.time() < deadline:  # kill it mid-run, once a few generations are stored
        time.sleep(0.1)
        done = _stored(tmp_path / "c.sqlite")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    done = _stored(tmp_path / "c.sqlite")
    assert 0 < done < 24

    resumed = _cli(args, env={"TL_TEST_DELAY": "0"})
    assert resumed.wait(120) == 0, resumed.stderr.read()
    final = load_results(tmp_path / "out" / "r")
    assert final.model_calls["planner"] + final.model_calls["executor"] == 24 - done
    assert final.to_json()["results"] == load_results(tmp_path / "ref" / "r").to_json()["results"]
    assert _comparable(load_samples(tmp_path / "out" / "r", "gsm8k")) == \
        _comparable(load_samples(tmp_path / "ref" / "r", "gsm8k"))


@pytest.mark.parametrize("args, message", [
    (["--tasks", "gsm9k"], "unknown task 'gsm9k'"),
    (["--tasks", "gsm8k", "--planner", "buildin:qwen2.5-coder-0.5b-instruct"], "builtin"),
    (["--tasks", "gsm8k", "--planner", "nosuch:thing"], "nosuch"),
    (["--tasks", "gsm8k", "--conditions", "full,sideways"], "sideways"),
    (["--tasks", "gsm8k", "--data-dir", "/nonexistent/data"], "/nonexistent/data"),
    (["--tasks", "gsm8k", "--planner", "/tmp/missing-model.gguf"], "missing-model.gguf"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, args, message):
    base = ["--planner", "scripted:oracle-planner", "--executor", "scripted:follower", "--no-cache",
            "--output", str(tmp_path)]
    # Later flags win in click, so the case's own --planner overrides the default one.
    result = CliRunner().invoke(main, [*base, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "error:" in result.output
    assert not any(tmp_path.iterdir())  # nothing was generated or written


def test_yaml_config_and_flags_win(tmp_path, data_dir):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("planner: scripted:oracle-planner\nexecutor: scripted:follower\ntasks: [gsm8k]\nlimit: 2\n"
                   f"output: {tmp_path / 'runs'}\nno-cache: true\nrun-id: fromyaml\n")
    result = CliRunner().invoke(main, ["--config", str(cfg), "--limit", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert load_results(tmp_path / "runs" / "fromyaml").n_samples["gsm8k"]["effective"] == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("planer: x\n")
    result = CliRunner().invoke(main, ["--config", str(bad)])
    assert result.exit_code == 2 and "planer" in result.output
