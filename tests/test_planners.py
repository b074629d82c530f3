"""`--planner reference` (the task's reference plan, no model) and `--planner self` (the executor as planner)."""

import json

import pytest

import tests.scripted_models  # noqa: F401  (registers the scripted models)
from tl_eval.harness.config import RunConfig
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.task import get_task
from tl_eval.harness.types import Problem
from tl_eval.reports.load import load_run
from tl_eval.tasks.code_plan import code_plan
from tl_eval.tasks.gsm8k import reference_plan as gsm8k_plan
from tl_eval.tasks.math500 import reference_plan as math_plan


def evaluate(tmp_path, task="gsm8k", **kw):
    cfg = RunConfig(**{"tasks": [task], "executor": "scripted:follower", "limit": 4,
                       "output": str(tmp_path / "runs"), "cache": str(tmp_path / "cache.sqlite"), **kw})
    return run(prepare(cfg), show_progress=False, log=lambda m: None)


def test_gsm8k_reference_plan_keeps_the_steps_but_not_the_final_result():
    rationale = ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
                 "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18")
    plan = gsm8k_plan(rationale, "18")
    assert plan == "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 every day at the farmer's market."
    assert "####" not in plan and "<<" not in plan


def test_math_reference_plan_drops_the_boxed_sentence():
    solution = "Each exponent has 3 choices. So there are $3^2 = 9$ in all. Hence $\\boxed{9}$ divisors."
    assert math_plan(solution, "9") == "Each exponent has 3 choices."  # the sentence stating 9 goes too
    one_sentence = "$f(1)+f(2)=2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$"
    plan = math_plan(one_sentence, "\\frac{14}{3}")
    assert "boxed" not in plan and "14" not in plan and plan.endswith("+1$")


def test_code_plan_names_the_steps_without_code():
    program = ("def f(xs, k):\n    total = 0\n    for i in range(len(xs)):\n        if xs[i] < k:\n"
               "            total += xs[i] * 2\n    return sorted(xs)[::-1][:total]\n")
    plan = code_plan(program, "f")
    assert "- Write f taking xs, k as follows." in plan
    assert "For each i in 0 up to the length of xs, exclusive:" in plan
    assert "If item i of xs is less than k:" in plan and "Increase total by item i of xs times 2." in plan
    for code in ("(", ")", "[", "]", "+=", "<", "def ", "range"):  # no operator, call or bracket is quoted
        assert code not in plan.replace("(exclusive)", ""), code


def test_every_reference_plan_of_the_code_tasks_is_free_of_code(data_dir):
    for name in ("humaneval", "mbpp"):
        task = get_task(name)
        problems = task.load(data_dir)
        assert all(task.reference_plan(p) and not task.trace_leaks(p, task.reference_plan(p)) for p in problems)


def test_reference_planner_runs_with_masking_and_leakage(tmp_path, data_dir):
    run_dir, result = evaluate(tmp_path, planner="reference", conditions=["full", "none", "masked"])
    assert run_dir.name.startswith("reference-plan__")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["planner"]["system"] == "reference plan" and config["planner"]["fingerprint"].startswith("reference")
    rows = [json.loads(x) for x in (run_dir / "samples_gsm8k.jsonl").read_text().splitlines()]
    task = get_task("gsm8k")
    problems = {p.problem_id: p for p in task.load(data_dir)[:4]}
    full = [r for r in rows if r["condition"] == "full"]
    assert [r["trace"] for r in full] == [task.reference_plan(problems[r["problem_id"]]) for r in full]
    assert {r["condition"] for r in rows} == {"full", "none", "masked"}
    m = result.tasks["gsm8k"]
    assert m.leakage_rate.value is not None and m.tag_compliance.value == 1.0
    assert result.model_calls["planner"] == 0
    assert load_run(run_dir).label == "reference plan → scripted:follower"


def test_self_planner_is_the_executors_model(tmp_path, data_dir):
    run_dir, result = evaluate(tmp_path, planner="self")
    assert run_dir.name.startswith("self-planner__")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["planner"]["spec"] == config["executor"]["spec"] == "scripted:follower"
    assert config["planner"]["system"] == "self-planner" and config["planner"]["requested"] == "self"
    assert load_run(run_dir).label == "self-planner (scripted:follower)"


def test_reference_planner_needs_reference_solutions(tmp_path, monkeypatch, data_dir):
    from tl_eval.tasks.gsm8k import Gsm8kTask

    monkeypatch.setattr(Gsm8kTask, "reference_plan", lambda self, p: None)
    with pytest.raises(ConfigError, match="no reference plan"):
        evaluate(tmp_path, planner="reference")
