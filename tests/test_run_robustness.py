"""Runs that fail well (issue 13): a verdict cache that hits across processes, bad values refused before any
generation, write failures as one-line errors without partial files, and concurrent runs sharing work."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import tests.scripted_models  # noqa: F401  (registers the scripted models)
from tl_eval.harness.cli import main
from tl_eval.harness.config import RunConfig, VerifierSettings
from tl_eval.harness.evaluate import load_task_problems
from tl_eval.harness.pipeline.judge import VerdictKeys, verdict_key
from tests.run_files import results_json, sample_rows

REPO = Path(__file__).resolve().parents[1]
COUNTING = ["--planner", "scripted:counting-planner", "--executor", "scripted:counting-executor"]


def _cli(args, env=None) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "import tests.scripted_models; from harness.cli import main; main()", *args]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return err


def _count(db: Path, table: str) -> int:
    return sqlite3.connect(db).execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _calls(file: Path) -> list[str]:
    return file.read_text().split("\n")[:-1] if file.exists() else []


# -- 1. the verdict cache hits across processes ---------------------------------------------------------

def test_verdict_cache_hits_when_rerun_in_a_new_process(tmp_path, data_dir):
    """gsm8k + humaneval: the code task's verifier object used to make every key differ per process."""
    args = ["--planner", "scripted:oracle-planner", "--executor", "scripted:coder", "--tasks", "gsm8k,humaneval",
            "--limit", "2", "--output", str(tmp_path / "runs"), "--cache", str(tmp_path / "c.sqlite"),
            "--run-id", "r"]
    first = _finish(_cli(args))
    assert "gsm8k: verifying 4 artifacts (0 cached)" in first and "humaneval: verifying" in first
    verdicts = _count(tmp_path / "c.sqlite", "verdicts")
    results = results_json(tmp_path / "runs" / "r")["results"]
    assert any(r["status"] == "fail" for r in sample_rows(tmp_path / "runs" / "r", "humaneval"))  # sandbox ran

    second = _finish(_cli(args))
    # Every verdict came from the cache.
    assert "gsm8k: verifying 0 artifacts (4 cached)" in second
    assert "humaneval: verifying 0 artifacts (4 cached)" in second
    assert _count(tmp_path / "c.sqlite", "verdicts") == verdicts
    assert results_json(tmp_path / "runs" / "r")["results"] == results


def test_verdict_key_depends_on_what_decides_the_verdict_only(data_dir):
    def task(name, **options):
        (t, problems, _), = load_task_problems([name], VerifierSettings(**options), limit=1)
        return t, problems[0]

    for name in ("gsm8k", "humaneval"):
        t, p = task(name)
        base = verdict_key(t, p, "x", "out")
        t.configure(code_verifier=object())  # a live object: its repr has an address
        assert verdict_key(t, p, "x", "out") == base
        assert verdict_key(task(name, workers=3)[0], p, "x", "out") == base  # parallelism decides nothing
        assert verdict_key(t, p, "y", "out") != base
    gsm, p = task("gsm8k")
    assert verdict_key(gsm, p, "x", "out") != verdict_key(gsm, p, "x", "other output")  # the grader reads it
    assert verdict_key(task("gsm8k", math_pipeline="flexible")[0], p, "x", "out") != verdict_key(gsm, p, "x", "out")
    assert verdict_key(task("gsm8k", time_limit_factor=9)[0], p, "x", "out") == verdict_key(gsm, p, "x", "out")
    he, q = task("humaneval")
    assert verdict_key(task("humaneval", time_limit_factor=9)[0], q, "x", "") != verdict_key(he, q, "x", "")
    assert VerdictKeys(he)(q, "x", "") == verdict_key(he, q, "x", "")


# -- 2. write failures: preflight, one-line error, no partial files --------------------------------------

def _invoke(tmp_path, *extra, calls=None):
    env = {"TL_TEST_CALLS": str(calls or tmp_path / "calls.txt")}
    return CliRunner().invoke(main, [*COUNTING, "--tasks", "gsm8k", "--limit", "2", "--quiet", *extra], env=env)


def _no_traceback(result) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and "error:" in result.output and "fix:" in result.output


def test_output_folder_that_cannot_be_created_is_refused_in_the_preflight(tmp_path, data_dir):
    # A path below a regular file fails for root too (chmod would not stop root).
    (tmp_path / "file").write_text("x")
    result = _invoke(tmp_path, "--output", str(tmp_path / "file" / "runs"), "--cache", str(tmp_path / "c.sqlite"))
    _no_traceback(result)
    assert "output folder" in result.output and "is a file" in result.output and "--output" in result.output
    assert _calls(tmp_path / "calls.txt") == [] and not (tmp_path / "c.sqlite").exists()


def test_cache_that_cannot_be_written_is_refused_in_the_preflight(tmp_path, data_dir):
    (tmp_path / "file").write_text("x")
    result = _invoke(tmp_path, "--output", str(tmp_path / "runs"), "--cache", str(tmp_path / "file" / "c.sqlite"))
    _no_traceback(result)
    assert "generation cache" in result.output and "--cache" in result.output
    assert _calls(tmp_path / "calls.txt") == [] and not (tmp_path / "runs").exists()


def test_full_disk_is_a_one_line_error_and_leaves_no_partial_file(tmp_path, data_dir, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):  # the kernel's answer for a full disk, for the results file only
        if ".results.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = _invoke(tmp_path, "--output", str(tmp_path / "runs"), "--cache", str(tmp_path / "c.sqlite"),
                     "--run-id", "r")
    _no_traceback(result)
    assert "No space left on device" in result.output and "free space" in result.output
    run = tmp_path / "runs" / "r"
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "samples_gsm8k.jsonl"]  # no results, no temp
    json.loads((run / "config.json").read_text())
    monkeypatch.setattr(os, "fsync", real_fsync)
    calls = len(_calls(tmp_path / "calls.txt"))
    again = _invoke(tmp_path, "--output", str(tmp_path / "runs"), "--cache", str(tmp_path / "c.sqlite"),
                    "--run-id", "r")
    assert again.exit_code == 0, again.output
    assert len(_calls(tmp_path / "calls.txt")) == calls  # the same command resumed from the cache


def test_read_only_cache_at_write_time_is_a_one_line_error(tmp_path):
    from tl_eval.harness.errors import OutputError
    from tl_eval.harness.pipeline.cache import Cache
    from tl_eval.harness.types import Generation

    cache = Cache(tmp_path / "c.sqlite")
    # A read-only connection gives SQLite's real "attempt to write a readonly database", root or not.
    cache._db = sqlite3.connect(f"file:{tmp_path / 'c.sqlite'}?mode=ro", uri=True, isolation_level=None,
                                check_same_thread=False)
    with pytest.raises(OutputError) as info:
        cache.put_generation("k", Generation("text"))
    assert "readonly" in info.value.problem and "--cache" in info.value.fix


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    from tl_eval.harness.errors import OutputError
    from tl_eval.harness.writes import atomic_write_text

    target = tmp_path / "results.json"
    target.write_text("old")
    def replace(*args):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match="Read-only file system"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


# -- 3. numeric options are checked before the first generation ------------------------------------------

@pytest.mark.parametrize("flag, value", [
    ("--temperature", "-1"), ("--temperature", "nan"), ("--temperature", "inf"), ("--k", "0"), ("--k", "1,-5"),
    ("--n-samples", "0"), ("--limit", "0"), ("--max-tokens", "0"), ("--planner-max-tokens", "-3"),
    ("--executor-max-tokens", "0"), ("--top-p", "0"), ("--top-p", "1.5"), ("--seed", "-1"),
    ("--seed", str(2**32)), ("--grader-timeout", "0"), ("--time-limit-factor", "-2"), ("--min-time-limit", "0"),
    ("--sample-time-cap", "0"), ("--memory-mb", "0"), ("--workers", "0"),
])
def test_out_of_range_numbers_exit_2_before_any_generation(tmp_path, data_dir, flag, value):
    result = _invoke(tmp_path, "--output", str(tmp_path / "runs"), "--no-cache", flag, value)
    _no_traceback(result)
    assert flag in result.output and "out of range" in result.output
    assert _calls(tmp_path / "calls.txt") == [] and not (tmp_path / "runs").exists()


def test_out_of_range_numbers_in_the_config_file_name_the_file(tmp_path, data_dir):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("planner: scripted:counting-planner\nexecutor: scripted:counting-executor\ntasks: [gsm8k]\n"
                   f"limit: 2\nno-cache: true\noutput: {tmp_path / 'runs'}\ntemperature: -0.5\n")
    result = CliRunner().invoke(main, ["--config", str(cfg)], env={"TL_TEST_CALLS": str(tmp_path / "calls.txt")})
    _no_traceback(result)
    assert f"temperature: -0.5 in {cfg}" in result.output
    cfg.write_text(cfg.read_text().replace("temperature: -0.5", "k: [1, 0]"))  # the flag's own name, --k
    result = CliRunner().invoke(main, ["--config", str(cfg)], env={"TL_TEST_CALLS": str(tmp_path / "calls.txt")})
    _no_traceback(result)
    assert f"k: 0,1 in {cfg}" in result.output
    assert _calls(tmp_path / "calls.txt") == []
    ok = CliRunner().invoke(main, ["--config", str(cfg), "--k", "1", "--quiet"],  # a flag overrides the file
                            env={"TL_TEST_CALLS": str(tmp_path / "calls.txt")})
    assert ok.exit_code == 0, ok.output


# -- 8. two runs of one command on one cache share the work ----------------------------------------------

def test_two_concurrent_runs_on_one_cache_compute_each_generation_once(tmp_path, data_dir):
    common = [*COUNTING, "--tasks", "gsm8k", "--limit", "6", "--quiet", "--run-id", "r"]
    ref_calls = tmp_path / "ref_calls.txt"
    _finish(_cli([*common, "--output", str(tmp_path / "ref"), "--cache", str(tmp_path / "ref.sqlite")],
                 env={"TL_TEST_CALLS": str(ref_calls)}))
    one_run = len(_calls(ref_calls))
    assert one_run == 6 + 12  # planner + executor under full and none

    calls = tmp_path / "calls.txt"
    env = {"TL_TEST_CALLS": str(calls), "TL_TEST_DELAY": "0.1"}
    procs = [_cli([*common, "--output", str(tmp_path / f"out{k}"), "--cache", str(tmp_path / "shared.sqlite")],
                  env=env) for k in range(2)]
    for p in procs:
        _finish(p)
    made = _calls(calls)
    assert len(made) == one_run, made
    reference = results_json(tmp_path / "ref" / "r")["results"]
    for k in range(2):
        assert results_json(tmp_path / f"out{k}" / "r")["results"] == reference
    assert _count(tmp_path / "shared.sqlite", "claims") == 0  # nothing left claimed


def test_a_claim_of_a_dead_run_is_taken_over(tmp_path):
    from tl_eval.harness.pipeline import cache as cache_module
    from tl_eval.harness.pipeline.cache import Cache, CachedGenerator, generation_key
    from tl_eval.harness.types import GenerationRequest, SamplingParams
    from tests.test_cache import CountingModel

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    request = GenerationRequest(({"role": "user", "content": "x"},), SamplingParams())
    model = CountingModel()
    cache = Cache(tmp_path / "c.sqlite")
    cache._db.execute("INSERT INTO claims VALUES (?,?,?,?,?)",  # a run on this host whose pid is gone
                      (generation_key(model.fingerprint(), request), "gone", cache_module._HOST, dead.pid, time.time()))
    start = time.monotonic()
    out = CachedGenerator(model, cache).generate([request])
    assert out[0].text == "X" and len(model.calls) == 1 and time.monotonic() - start < 5
