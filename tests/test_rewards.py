"""Reward formulas on hand-computed cases, and the TRL reward function over the real GSM8K task."""

import asyncio

import pytest

from tl_eval.harness.errors import DataError
from tl_eval.harness.models import load_generator, register_scripted
from tl_eval.harness.models.scripted import ScriptedModel
from tl_eval.harness.pipeline.cache import Cache
from tl_eval.harness.task import get_task
from tl_eval.harness.types import SamplingParams, Verdict
from tl_eval.training import rewards as R
from tl_eval.training.executor_client import ExecutorClient


def v(status, **details):
    return Verdict(status, details=details)


# -- formulas ---------------------------------------------------------------------------------------------

def test_hybrid_exec_bonus_by_status():
    assert R.hybrid_exec(v("pass")) == pytest.approx(1.0)
    assert R.hybrid_exec(v("fail")) == pytest.approx(0.2)  # ran cleanly, no test passed
    assert R.hybrid_exec(v("runtime_error")) == pytest.approx(0.05)
    assert R.hybrid_exec(v("timeout")) == pytest.approx(0.05)
    assert R.hybrid_exec(v("compile_error")) == 0.0
    assert R.hybrid_exec(v("no_answer")) == 0.0


def test_hybrid_exec_uses_per_test_counts():
    assert R.hybrid_exec(v("fail", tests_passed=3, tests_total=4)) == pytest.approx(0.8 * 0.75 + 0.2)
    assert R.hybrid_exec(v("runtime_error", tests_passed=1, tests_total=2)) == pytest.approx(0.4 + 0.05)


def test_tie_rule():
    assert R.tie_coefficient(0, 3) == 0.0
    assert R.tie_coefficient(1, 3) == 0.5
    assert R.tie_coefficient(2, 3) == pytest.approx(2 / 3)
    assert R.tie_coefficient(3, 3) == 1.0
    assert R.utility_coefficient(2, 1, 3) == 1.0
    assert R.utility_coefficient(0, 3, 3) == -1.0
    assert R.utility_coefficient(2, 2, 3) == pytest.approx(2 / 3)


def test_math_tracelift_hand_computed():
    parts = R.tracelift_parts([v("pass"), v("pass"), v("fail")], [v("fail")] * 3, rm=0.8, partial_credit=False)
    assert parts.uplift == pytest.approx(2 / 3)
    assert parts.reward == pytest.approx(0.5 * 1 + 0.5 * 0.8 * 2 / 3)
    # The trace hurts: e2e fails, uplift = 0 - 1, rm clamped to 1.
    hurt = R.tracelift_parts([v("fail")] * 3, [v("pass")] * 3, rm=1.7, partial_credit=False)
    assert hurt.reward == pytest.approx(-0.5)
    # A negative RM score is clamped to 0: only the e2e half counts.
    assert R.tracelift_parts([v("pass")] * 3, [v("fail")] * 3, rm=-0.4, partial_credit=False).reward == pytest.approx(0.5)


def test_code_tracelift_hand_computed():
    # Uplift > 0: hybrid 1.0 + 0.2·0.9 clamps to 1.
    up = R.tracelift_parts([v("pass"), v("pass"), v("fail")], [v("fail")] * 3, rm=0.9, partial_credit=True)
    assert up.coefficient == 1.0 and up.reward == 1.0
    # Uplift < 0 on code that does not compile: 0 - 0.2·0.5 clamps to 0.
    down = R.tracelift_parts([v("compile_error")] * 3, [v("pass")] * 3, rm=0.5, partial_credit=True)
    assert down.coefficient == -1.0 and down.reward == 0.0
    # Uplift < 0 above the floor: 0.2 (ran, failed) - 0.2·0.5 = 0.1.
    assert R.tracelift_parts([v("fail")] * 3, [v("pass"), v("fail"), v("fail")], rm=0.5,
                             partial_credit=True).reward == pytest.approx(0.1)
    # Tie at 1 of 3 each way: coefficient 0.5; e2e fails half its tests: 0.8·0.5 + 0.2 + 0.2·0.6·0.5.
    tie = R.tracelift_parts([v("fail", tests_passed=1, tests_total=2), v("pass"), v("fail")],
                            [v("pass"), v("fail"), v("fail")], rm=0.6, partial_credit=True)
    assert tie.uplift == 0.0 and tie.coefficient == 0.5
    assert tie.reward == pytest.approx(0.6 + 0.06)
    # Tie at zero successes: no RM credit at all.
    assert R.tracelift_parts([v("fail")] * 3, [v("fail")] * 3, rm=1.0, partial_credit=True).reward == pytest.approx(0.2)


# -- the reward function over the executor client ----------------------------------------------------------

class _Exec(ScriptedModel):
    """Right with a trace that mentions 'step'; alone, right only on sample 0 of the first problem."""

    options_allowed = None

    def respond(self, messages, request):
        text = messages[-1]["content"]
        gold = self.options.get("gold", "")
        if "Provided reasoning" in text:
            return f"\\boxed{{{gold}}}" if "step" in text.split("Provided reasoning", 1)[1] else "\\boxed{-1}"
        return f"\\boxed{{{gold}}}" if request.sample_index == 0 and "Natalia" in text else "\\boxed{-1}"


@pytest.fixture
def gsm8k_client(data_dir, tmp_path):
    task = get_task("gsm8k")
    problems = task.load(data_dir, "train")[:2]
    golds = {p.prompt.strip(): p.answer for p in problems}

    class Router(_Exec):
        def respond(self, messages, request):
            text = messages[-1]["content"]
            self.options = {"gold": next(g for q, g in golds.items() if q in text)}
            return super().respond(messages, request)

    register_scripted("test-rewards-router", Router)
    cache = Cache(tmp_path / "cache.sqlite")
    client = ExecutorClient(task, load_generator("scripted:test-rewards-router"), cache,
                            SamplingParams(0.5, 1.0, 64, 7), k=3)
    yield task, problems, client
    task.close()
    cache.close()


class _LenScorer:
    def score(self, traces, problems, task_type):
        assert len(traces) == len(problems) and task_type == "math"
        return [0.5 for _ in traces]


def _reader(task_name="gsm8k", budget=8, fmt="tagged"):
    """The training reader of the evaluation's planner turn for `task_name` (its stops, the budget)."""
    from tl_eval.harness.pipeline.trace import planner_turn
    from tl_eval.harness.config import SamplingSettings
    from tl_eval.training.grpo.turn import TurnReader
    from tests.conftest import DATA_DIR

    task = get_task(task_name)
    problem = task.load(DATA_DIR)[0]
    return TurnReader(planner_turn(task, problem, SamplingSettings(planner_max_tokens=budget, planner_format=fmt)),
                      eos_token_ids=[0])


def test_format_reward_is_the_evaluations_tag_compliance():
    fmt = R.FormatReward(_reader())
    # The tagged turn is the continuation of the "<reasoning>" prefill.
    completions = ["Add, then halve.</reasoning>", "Add, then", "Add, then halve.", "Add, then halve and",
                   " </reasoning>", [{"role": "assistant", "content": "Halve."}], "Add.</reasoning>\nthen more"]
    ids = [[1] * 8, [1] * 8, [1] * 5, [1] * 7 + [0], [1] * 3, [1] * 2, [1] * 8]
    # closed by the stop; cut at the budget; ended early; ended by eos at the budget; blank; conversational,
    # ended early; text after the stop (a backend that returns it) is not part of the turn
    assert fmt([None] * 7, completions, completion_ids=ids) == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert fmt.__name__ == "format"


def test_reader_reads_as_the_evaluation_reads():
    from tl_eval.harness.pipeline.trace import read_turn

    reader = _reader("mbpp", budget=4)
    turn, trace = reader("Loop over the list.```python\nx", [1, 2, 3, 4])  # the code task's stop ends the turn
    assert (turn, trace) == read_turn("Loop over the list.", "stop", "tagged")
    assert trace.text == "Loop over the list." and trace.compliant
    turn, trace = reader("Loop over", [1, 2, 3, 4])
    assert not trace.closed and turn == "<reasoning>\nLoop over"
    free = _reader("gsm8k", fmt="free")
    assert free("<reasoning>Add.</reasoning> Then", [1, 2]) == read_turn("<reasoning>Add.</reasoning> Then", "stop", "free")


def test_tracelift_reward_calls_alone_once_per_problem(gsm8k_client):
    task, problems, client = gsm8k_client
    reward = R.PlannerReward("tracelift", client, {p.problem_id: p for p in problems}, _reader(budget=64), _LenScorer())
    ids = [problems[0].problem_id] * 4 + [problems[1].problem_id] * 4
    completions = [[{"role": "assistant", "content": f"{t}</reasoning>"}]
                   for t in ["step one", "nothing", "step two", "x"] * 2]
    logged = {}
    out = asyncio.run(reward(prompts=[None] * 8, completions=completions, problem_id=ids,
                             log_metric=lambda k, val: logged.__setitem__(k, val)))
    # Problem 0: alone succeeds 1 of 3; problem 1 never. With 'step' the trace always succeeds.
    assert out[0] == pytest.approx(0.5 + 0.5 * 0.5 * (1 - 1 / 3))
    assert out[1] == pytest.approx(0.5 * 0.5 * (0 - 1 / 3))
    assert out[4] == pytest.approx(0.5 + 0.5 * 0.5 * 1.0)
    assert out[5] == 0.0
    c = client.counters
    assert c.alone_calls == len(problems) * 3  # problems × K, not completions × K
    assert c.with_trace_calls == 8 * 3 and c.traces == 8
    assert logged["parts/without_trace_acc"] == pytest.approx((1 / 3 + 0) / 2)
    # A second batch over the same problems makes no executor-alone call.
    asyncio.run(reward(prompts=[None] * 8, completions=completions, problem_id=ids))
    assert client.counters.alone_calls == len(problems) * 3
    assert client.counters.cache_hits == 8 * 3  # the same traces again come from the cache


def test_alone_samples_come_from_shared_cache(gsm8k_client, tmp_path):
    task, problems, client = gsm8k_client
    client.run(problems, ["a", "b"], 1, with_alone=True)
    # A new client on the same cache (a resumed run, or the evaluation's `none` condition) makes no new call.
    fresh = ExecutorClient(task, load_generator("scripted:test-rewards-router"), client.cache,
                           SamplingParams(0.5, 1.0, 64, 7), k=3)
    _, alone = fresh.run(problems, ["a", "b"], 1, with_alone=True)
    assert fresh.counters.calls == 0 and fresh.counters.cache_hits == 2 + 6
    assert [o.verdict.passed for o in alone[problems[0].problem_id]] == [True, False, False]


def test_exec_only_reward_is_the_verifier_outcome(gsm8k_client):
    task, problems, client = gsm8k_client
    reward = R.PlannerReward("exec-only", client, {p.problem_id: p for p in problems}, _reader(budget=64))
    out = asyncio.run(reward(prompts=[None] * 2, completions=["a step", "none"],
                             problem_id=[p.problem_id for p in problems]))
    assert out == [1.0, 0.0]
    assert client.counters.alone_calls == 0 and client.counters.with_trace_calls == 2


def test_reward_needs_problem_id_and_scorer(gsm8k_client):
    task, problems, client = gsm8k_client
    with pytest.raises(ValueError, match="RM scorer"):
        R.PlannerReward("tracelift", client, {}, _reader())
    reward = R.PlannerReward("exec-only", client, {}, _reader())
    with pytest.raises(ValueError, match="problem_id"):
        asyncio.run(reward(prompts=["p"], completions=["c"]))


def test_evaluation_and_training_judge_alike(data_dir, tmp_path):
    """The executor alone through `tl-eval` (condition none) and through the trainer's client: one step, the same
    requests, outputs and verdicts, so the trainer's executor-alone samples are the evaluation's."""
    from tl_eval.harness.config import RunConfig
    from tl_eval.harness.evaluate import prepare, run
    from tests.run_files import sample_rows

    task = get_task("gsm8k")
    problems = task.load(data_dir)[:3]
    golds = {p.prompt.strip(): p.answer for p in problems}

    class Router(_Exec):
        def respond(self, messages, request):
            text = messages[-1]["content"]
            gold = next(g for q, g in golds.items() if q in text)
            return f"\\boxed{{{gold}}}" if request.sample_index != 1 else "\\boxed{-1}"

    register_scripted("test-judge-alike", Router)
    cache_file = tmp_path / "cache.sqlite"
    cfg = RunConfig(tasks=["gsm8k"], planner="none", executor="scripted:test-judge-alike", limit=3, n_samples=3,
                    temperature=0.5, seed=7, executor_max_tokens=64, data_dir=str(data_dir),
                    output=str(tmp_path / "runs"), cache=str(cache_file), run_id="alike")
    run_dir, _ = run(prepare(cfg), show_progress=False, log=lambda m: None)
    evaluated = {(s["problem_id"], s["sample_index"]): s for s in sample_rows(run_dir, "gsm8k")}

    cache = Cache(cache_file)
    client = ExecutorClient(task, load_generator("scripted:test-judge-alike"), cache, cfg.sampling.executor(), k=3)
    _, alone = client.run(problems, ["-"] * 3, 1, with_alone=True)
    trained = {(pid, i): o for pid, outs in alone.items() for i, o in enumerate(outs)}
    assert set(trained) == set(evaluated)
    for key, outcome in trained.items():
        s = evaluated[key]
        assert (outcome.output, outcome.artifact, outcome.verdict.status) == \
               (s["executor_output"], s["artifact"], s["status"])
    assert client.counters.alone_calls == 0  # the evaluation's generations, found under the same keys
    assert sorted(o.verdict.passed for o in trained.values()) == [False] * 3 + [True] * 6
    task.close()
    cache.close()


def test_training_problems_selected_by_executor_alone_rate(gsm8k_client):
    from tl_eval.training.grpo.dataset import select_by_executor_alone

    task, problems, client = gsm8k_client
    # Problem 0: the executor alone succeeds 1 of 3 times; problem 1 never.
    chosen, rates = select_by_executor_alone(client, problems, 0.3, 0.7, limit=None, log=lambda m: None)
    assert [p.problem_id for p in chosen] == [problems[0].problem_id]
    assert rates == {problems[0].problem_id: pytest.approx(1 / 3), problems[1].problem_id: 0.0}
    assert client.counters.alone_calls == 6 and client.counters.traces == 0  # screening scores no trace
    # The reward's own executor-alone samples: training on the chosen problems makes no new alone call.
    client.run(chosen, ["step"], 1, with_alone=True)
    assert client.counters.alone_calls == 6
    with pytest.raises(DataError, match="no screened problem"):
        select_by_executor_alone(client, problems, 0.9, 1.0, limit=None, log=lambda m: None)
