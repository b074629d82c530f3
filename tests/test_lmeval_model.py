"""The lm-eval model `tl-pair`: model args, prompts, gen_kwargs, scoring by lm-eval's own filters, trace logging."""

import json

import pytest

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

from tl_eval.harness.errors import ConfigError  # noqa: E402
from tests.fixtures.lmeval import helpers  # noqa: E402
from tl_eval.lmeval import prompts  # noqa: E402
from tl_eval.lmeval.model import TLPairLM, parse_settings, sampling_from_gen_kwargs  # noqa: E402

SCRIPTED = helpers.load_scripted()
PAIR = {"planner": "scripted:lmx-oracle-planner", "executor": "scripted:lmx-formats", "cache": "off"}


@pytest.fixture
def task_dir(tmp_path, data_dir):
    return helpers.write_task_dir(tmp_path, data_dir)


def _instance(context: str, gen_kwargs: dict, doc_id: int = 0) -> Instance:
    return Instance("generate_until", {}, (context, gen_kwargs), 0, ("t", doc_id, 1))


def test_model_args_are_checked():
    with pytest.raises(ConfigError, match="planner_max_tokens"):
        parse_settings(planner="scripted:echo", planer_max_tokens=3)
    with pytest.raises(ConfigError, match="needs a planner"):
        parse_settings(executor="scripted:echo")
    with pytest.raises(ConfigError, match="one condition per lm-eval run"):
        parse_settings(planner="scripted:echo", conditions="full,none")
    with pytest.raises(ConfigError, match="paraphrased"):
        parse_settings(planner="scripted:echo", conditions="paraphrased")
    with pytest.raises(ConfigError, match="not an integer"):
        parse_settings(planner="scripted:echo", executor_max_tokens="many")
    # lm-eval's parser turns the word `none` into None; either way the executor runs alone.
    assert parse_settings(planner=None).condition == "none"
    assert parse_settings(planner="none", conditions="full").planner is None
    s = parse_settings(planner="scripted:echo", conditions="truncated@0.5", batch_size=1, device="cuda:0")
    assert (s.condition, s.executor) == ("truncated@0.5", "frozen")


def test_gen_kwargs_map_to_sampling():
    s = sampling_from_gen_kwargs({"until": "\n\n", "max_gen_toks": 64, "do_sample": False, "temperature": 0.7},
                                 default_max=256, seed=5)
    assert (s.stop, s.max_tokens, s.temperature, s.seed) == (("\n\n",), 64, 0.0, 5)
    s = sampling_from_gen_kwargs({"do_sample": True, "temperature": 0.7, "top_p": 0.9}, default_max=256, seed=5)
    assert (s.stop, s.max_tokens, s.temperature, s.top_p) == ((), 256, 0.7, 0.9)


def test_prompts_wrap_the_lm_eval_context():
    context = "Question: What is 2+3?\nAnswer:"
    assert prompts.executor_messages(context, None) == [{"role": "user", "content": context}]
    full = prompts.executor_messages(context, "Add the numbers.")[0]["content"]
    assert full.startswith(context)
    assert full.index("Provided reasoning:\nAdd the numbers.") < full.index("Use the provided reasoning as guidance")
    planner = prompts.planner_messages(context)[0]["content"]
    assert planner.startswith(context) and "<reasoning>" in planner and "Do not state the final answer" in planner
    # A chat history encoded by apply_chat_template keeps its turns; the instruction joins the last user turn.
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
               {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    msgs = prompts.executor_messages(json.dumps(history), "T")
    assert msgs[:3] == history[:3] and msgs[3]["content"].startswith("Q2\n\nProvided reasoning:\nT")


def test_lm_eval_scores_the_executor_text_with_its_filters(task_dir):
    out = helpers.simple_evaluate(task_dir, PAIR, limit=5)
    res = out["results"][helpers.TASK_NAME]
    # Formats by problem: '#### N' / \boxed{N} / '#### N.00' / wrong / '#### N' + text past the stop sequence.
    assert res["exact_match,strict-match"] == pytest.approx(2 / 5)
    assert res["exact_match,flexible-extract"] == pytest.approx(3 / 5)
    rows = {r["doc_id"]: r for r in out["samples"][helpers.TASK_NAME] if r["filter"] == "strict-match"}
    assert "Question:" not in rows[4]["resps"][0][0]  # cut at the task's `until`
    assert rows[4]["resps"][0][0].rstrip().endswith("#### " + SCRIPTED.problem_of(rows[4]["doc"]["question"])[1])
    # The trace is logged with the request, next to lm-eval's own (context, gen_kwargs).
    logged = rows[0]["arguments"][0][2]["tl_pair"]
    assert logged["planner"] == "scripted:lmx-oracle-planner" and logged["condition"] == "full"
    gold = SCRIPTED.problem_of(rows[0]["doc"]["question"])[1]
    assert logged["samples"][0]["trace"].endswith(f"It comes to {gold}.")
    assert logged["samples"][0]["tag_compliant"] is True
    assert out["config"]["tl_pair"]["executor_fingerprint"].startswith("scripted:lmx-formats")


def test_planner_none_is_the_executor_alone(task_dir):
    out = helpers.simple_evaluate(task_dir, {**PAIR, "planner": None}, limit=3)
    res = out["results"][helpers.TASK_NAME]
    assert res["exact_match,strict-match"] == 0.0 and res["exact_match,flexible-extract"] == 0.0
    row = out["samples"][helpers.TASK_NAME][0]
    logged = row["arguments"][0][2]["tl_pair"]
    assert logged["condition"] == "none" and logged["samples"][0]["executor_trace"] is None
    assert row["resps"][0][0] == "I do not know."


def test_loglikelihood_names_the_alternative():
    lm = TLPairLM(**PAIR)
    try:
        with pytest.raises(NotImplementedError, match="generate_until"):
            lm.loglikelihood([])
        with pytest.raises(NotImplementedError, match="generative tasks"):
            lm.loglikelihood_rolling([])
    finally:
        lm.close()


def test_repeats_are_distinct_samples_and_conditions_apply(data_dir):
    question = json.loads((data_dir / "gsm8k" / "test.jsonl").open().readline())["question"]
    req = _instance(f"Question: {question}\nAnswer:", {"until": ["Question:"], "max_gen_toks": 50})
    lm = TLPairLM(**PAIR, conditions="filler")
    try:
        outs = lm.generate_until([req, req])  # lm-eval passes one Instance `repeats` times
    finally:
        lm.close()
    assert len(outs) == 2
    samples = req.args[2]["tl_pair"]["samples"]
    assert len(samples) == 2 and all(s is not None for s in samples)
    for s in samples:  # filler: the executor saw a content-free trace of the same length
        assert len(s["executor_trace"]) == len(s["trace"]) and set(s["executor_trace"]) <= {".", " "}
    assert outs == ["Add the amounts step by step.\n#### 18"] * 2


def test_the_shared_cache_makes_a_rerun_free(tmp_path, data_dir):
    question = json.loads((data_dir / "gsm8k" / "test.jsonl").open().readline())["question"]
    args = {**PAIR, "cache": str(tmp_path / "cache.sqlite")}
    first = TLPairLM(**args)
    try:
        a = first.generate_until([_instance(f"Question: {question}\nAnswer:", {"until": ["Question:"]})])
        assert (first.planner.model_calls, first.executor.model_calls) == (1, 1)
    finally:
        first.close()
    second = TLPairLM(**args)
    try:
        b = second.generate_until([_instance(f"Question: {question}\nAnswer:", {"until": ["Question:"]})])
        assert (second.planner.model_calls, second.executor.model_calls) == (0, 0)
    finally:
        second.close()
    assert a == b and a[0].endswith("#### 18")
