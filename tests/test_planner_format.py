"""Traces that are plans: the tagged planner turn, the masked condition's uplift, and the executor alone."""

from __future__ import annotations

import json

import pytest

import tests.scripted_models  # noqa: F401  (registers the scripted models)
from tl_eval.harness.config import RunConfig
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.results import load_results
from tests.run_files import sample_rows


def evaluate(tmp_path, **kw):
    cfg = RunConfig(**{"tasks": ["gsm8k"], "planner": "scripted:oracle-planner", "executor": "scripted:follower",
                       "limit": 8, "output": str(tmp_path / "runs"), "cache": str(tmp_path / "cache.sqlite"), **kw})
    run_dir, result = run(prepare(cfg), show_progress=False, log=lambda m: None)
    return run_dir, result.to_json()


def test_a_dictating_planner_buys_no_masked_uplift(tmp_path, data_dir):
    _, results = evaluate(tmp_path, conditions=["masked"])
    m = results["metrics"]["gsm8k"]
    assert m["uplift"]["uplift"] == 1.0 and m["uplift"]["p_value"] < 0.05
    assert m["uplift_masked"]["uplift"] == 0.0
    assert results["results"]["gsm8k"]["uplift_masked,masked"] == 0.0


def test_a_method_without_the_answer_keeps_its_uplift(tmp_path, data_dir):
    run_dir, results = evaluate(tmp_path, planner="scripted:method-planner", executor="scripted:calculator",
                                conditions=["masked"])
    m = results["metrics"]["gsm8k"]
    assert m["uplift"]["uplift"] == 1.0 and m["uplift_masked"]["uplift"] == 1.0
    assert m["leakage_rate"]["value"] == 0.0
    masked = [r for r in sample_rows(run_dir, "gsm8k") if r["condition"] == "masked"]
    # Nothing leaked: not applicable, `full`'s outcome without a second executor call.
    assert all(r["intervention"].get("same_as_full") and r["passed"] and r["executor_tokens"] == 0 for r in masked)
    assert m["cost"]["stages"]["execute:full"]["model_calls"] == 8
    assert "execute:masked" not in m["cost"]["stages"]


def test_masked_records_what_was_removed(tmp_path, data_dir):
    run_dir, _ = evaluate(tmp_path, conditions=["masked"])
    masked = [r for r in sample_rows(run_dir, "gsm8k") if r["condition"] == "masked"]
    for r in masked:
        assert r["intervention"]["applied"] and r["intervention"]["kind"] == "mask"
        (a, b), = r["intervention"]["removed"]
        assert "[masked]" in r["executor_trace"] and r["trace"][a:b] not in r["executor_trace"].split()


def test_tagged_format_opens_the_turn_and_stops_at_the_close(tmp_path, data_dir):
    run_dir, results = evaluate(tmp_path, planner="scripted:recording-planner", limit=2)
    r = sample_rows(run_dir, "gsm8k")[0]
    seen = json.loads(r["trace"])
    assert seen[-1] == {"role": "assistant", "content": "<reasoning>\n"}
    assert r["planner_output"].startswith("<reasoning>\n") and r["planner_output"].endswith("</reasoning>")
    assert r["tag_compliant"] and results["metrics"]["gsm8k"]["traces"] == {
        "n": 2, "compliant": 2, "untagged": 0, "cut_at_token_limit": 0}
    free_dir, _ = evaluate(tmp_path, planner="scripted:recording-planner", limit=2, planner_format="free")
    assert free_dir != run_dir  # the format is part of the run's identity
    seen = json.loads(sample_rows(free_dir, "gsm8k")[0]["trace"])
    assert seen[-1]["role"] == "user"


def test_untagged_planner_is_reported_plainly(tmp_path, data_dir, capsys):
    from tl_eval.harness.summary import print_summary

    run_dir, results = evaluate(tmp_path, planner="scripted:vague-planner", limit=3, planner_max_tokens=3)
    t = results["metrics"]["gsm8k"]["traces"]
    assert t["cut_at_token_limit"] == 3 and t["compliant"] == 0
    print_summary(load_results(run_dir), str(run_dir))
    assert "3 of 3 traces are not format-compliant" in capsys.readouterr().out


def test_executor_alone_is_a_system_and_shares_the_cache(tmp_path, data_dir):
    alone_dir, alone = evaluate(tmp_path, planner="none")
    assert alone_dir.name.startswith("executor-alone__")
    m = alone["metrics"]["gsm8k"]
    assert list(m["conditions"]) == ["none"] and "uplift" not in m
    assert alone["systems"]["planner"] == "none" and alone["model_calls"]["planner"] == 0
    _, pair = evaluate(tmp_path)
    stages = pair["metrics"]["gsm8k"]["cost"]["stages"]
    assert stages["execute:none"]["model_calls"] == 0 and stages["execute:none"]["cache_hits"] == 8
    assert pair["metrics"]["gsm8k"]["conditions"]["none"]["pass@k"] == m["conditions"]["none"]["pass@k"]


def test_executor_alone_refuses_trace_conditions(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="need a planner"):
        evaluate(tmp_path, planner="none", conditions=["faithfulness"])


@pytest.mark.model
def test_llamacpp_prefill_continues_the_turn_and_stops():
    from tl_eval.harness.models import load_generator
    from tl_eval.harness.types import GenerationRequest, SamplingParams

    ask = ({"role": "user", "content": "Plan how to sort a list. Write your plan inside <reasoning> tags."},)
    with load_generator("builtin:smollm2-135m-instruct") as gen:
        plain, pre = gen.generate([
            GenerationRequest(ask, SamplingParams(max_tokens=8)),
            GenerationRequest(ask + ({"role": "assistant", "content": "<reasoning>\n"},),
                              SamplingParams(max_tokens=40, stop=("</reasoning>", "list"))),
        ])
    # The prefill's few tokens are in the prompt (a new turn would add the template's markers too).
    assert 0 < pre.prompt_tokens - plain.prompt_tokens <= 5
    assert "list" not in pre.text and not pre.text.lstrip().startswith("<reasoning>")
