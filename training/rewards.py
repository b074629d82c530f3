"""Reward formulas of the planner trainer (execution-only and TraceLift), as small pure functions.

Formulas follow DESIGN.md (Training) and TraceLift (arXiv 2605.03862):
- code `hybrid_exec = 0.8·pass_rate + bonus`, bonus 0.2 if the program ran (all tests passed, or some failed),
  0.05 if it crashed or timed out, 0 if it did not compile or nothing was extracted;
- math `0.5·e2e + 0.5·clamp(rm,0,1)·uplift`, with `uplift = mean_K success(trace) − mean_K success(no trace)`;
- code `clamp(hybrid_exec + 0.2·clamp(rm,0,1)·u, 0, 1)`, where `u` is the *utility coefficient*: +1 when the
  trace made the executor succeed more often than without it, −1 when less often, and on a tie TraceLift's
  tie rule (`tie_coefficient`) instead of sign(0) = 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from tl_eval.harness.pipeline.trace import Trace
from tl_eval.harness.types import Verdict

CODE_RM_WEIGHT = 0.2
MATH_E2E_WEIGHT = 0.5
RAN_BONUS = 0.2  # the program ran to the end of its tests
CRASH_BONUS = 0.05  # runtime error or timeout: it parsed, which is better than not compiling


def clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, float(x)))


def success(verdict: Verdict) -> float:
    """1.0 if the artifact passed (all tests, or the right answer), else 0.0."""
    return 1.0 if verdict.passed else 0.0


def pass_rate(verdict: Verdict) -> float:
    """Share of tests passed, from the verdict's per-test counts; pass=1 / otherwise 0 when they are absent."""
    details = verdict.details or {}
    total = details.get("tests_total", details.get("total"))
    passed = details.get("tests_passed", details.get("passed"))
    if isinstance(total, int) and isinstance(passed, int) and total > 0:
        return clamp(passed / total, 0.0, 1.0)
    return success(verdict)


def hybrid_exec(verdict: Verdict) -> float:
    """TraceLift's code execution reward: `0.8·pass_rate` plus a bonus for code that ran or at least parsed."""
    if verdict.status in ("pass", "fail"):
        bonus = RAN_BONUS
    elif verdict.status in ("runtime_error", "timeout"):
        bonus = CRASH_BONUS
    else:  # compile_error, no_answer, sandbox_error
        bonus = 0.0
    return 0.8 * pass_rate(verdict) + bonus


def exec_reward(verdict: Verdict, partial_credit: bool) -> float:
    """The execution-only reward of one executor outcome: 1/0, or the hybrid pass rate where the task's verdicts
    give partial credit (code: tests passed)."""
    return hybrid_exec(verdict) if partial_credit else success(verdict)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def uplift(with_trace: Sequence[float], without_trace: Sequence[float]) -> float:
    """Mean success with the trace minus mean success without it, in [-1, 1]."""
    return clamp(mean(with_trace) - mean(without_trace), -1.0, 1.0)


def tie_coefficient(successes: int, k: int) -> float:
    """TraceLift's tie rule: credit for a trace that did exactly as well as the executor alone.

    No shared success gives 0 (a useless trace earns no RM credit); otherwise the shared success rate
    `successes/k`, except that TraceLift rounds 1 of 3 up to 0.5. Always succeeding both ways gives 1.
    """
    if successes <= 0:
        return 0.0
    if successes >= k:
        return 1.0
    if k == 3 and successes == 1:
        return 0.5
    return successes / k


def utility_coefficient(with_successes: int, without_successes: int, k: int) -> float:
    """sign(uplift) on success counts, with `tie_coefficient` in place of sign(0)."""
    if with_successes > without_successes:
        return 1.0
    if with_successes < without_successes:
        return -1.0
    return tie_coefficient(with_successes, k)


def math_tracelift(e2e: float, rm: float, lift: float) -> float:
    """`0.5·e2e + 0.5·clamp(rm,0,1)·uplift`; may be negative when the trace hurts the executor."""
    return MATH_E2E_WEIGHT * e2e + (1.0 - MATH_E2E_WEIGHT) * clamp(rm, 0.0, 1.0) * lift


def code_tracelift(exec_part: float, rm: float, coefficient: float, weight: float = CODE_RM_WEIGHT) -> float:
    """`clamp(hybrid_exec + weight·clamp(rm,0,1)·coefficient, 0, 1)`."""
    return clamp(exec_part + weight * clamp(rm, 0.0, 1.0) * coefficient, 0.0, 1.0)


@dataclass
class RewardParts:
    """One completion's reward and what it is made of; logged per step."""

    reward: float
    exec: float  # execution reward of the end-to-end (first with-trace) executor sample
    e2e_success: float
    with_trace_acc: float | None = None  # mean success over the K with-trace samples
    without_trace_acc: float | None = None  # mean success over the K executor-alone samples
    uplift: float | None = None
    rm: float | None = None
    coefficient: float | None = None  # code: the utility coefficient (sign of uplift with the tie rule)

    def to_dict(self) -> dict:
        return asdict(self)


def exec_only_parts(verdict: Verdict, partial_credit: bool) -> RewardParts:
    """Execution-only reward: the verifier outcome of executor(problem, trace)."""
    return RewardParts(reward=exec_reward(verdict, partial_credit), exec=exec_reward(verdict, partial_credit),
                       e2e_success=success(verdict))


def tracelift_parts(with_trace: Sequence[Verdict], without_trace: Sequence[Verdict], rm: float,
                    partial_credit: bool) -> RewardParts:
    """TraceLift reward from K with-trace verdicts (the first is the end-to-end one) and K executor-alone ones."""
    if not with_trace or not without_trace:
        raise ValueError("tracelift_parts needs at least one with-trace and one executor-alone verdict")
    e2e = with_trace[0]
    w = [success(v) for v in with_trace]
    wo = [success(v) for v in without_trace]
    lift = uplift(w, wo)
    parts = RewardParts(reward=0.0, exec=exec_reward(e2e, partial_credit), e2e_success=success(e2e),
                        with_trace_acc=mean(w), without_trace_acc=mean(wo), uplift=lift, rm=float(rm))
    if partial_credit:  # TraceLift's code formula
        # Counts are compared on the same K (TraceLift's repeats); unequal K would bias the comparison.
        k = max(len(w), len(wo))
        parts.coefficient = utility_coefficient(round(mean(w) * k), round(mean(wo) * k), k)
        parts.reward = code_tracelift(parts.exec, rm, parts.coefficient)
    else:
        parts.reward = math_tracelift(parts.e2e_success, rm, lift)
    return parts


# -- TRL reward functions ---------------------------------------------------------------------------------


def completion_text(completion) -> str:
    """The text of a TRL completion: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


# (completion text, its token ids or None) -> (the planner's turn, its trace), as the evaluation reads them
# (training.grpo.turn.TurnReader).
ReadTurn = Callable[[str, Sequence[int] | None], tuple[str, Trace]]


def read_completions(reader: ReadTurn, completions, completion_ids) -> list[tuple[str, Trace]]:
    ids = completion_ids if completion_ids is not None else [None] * len(completions)
    return [reader(completion_text(c), i) for c, i in zip(completions, ids)]


class PlannerReward:
    """A TRL reward function (async, so TRL runs it on its event loop): executor-grounded rewards per completion.

    It reads the `problem_id` column to find each completion's problem, reads each completion's trace as the
    evaluation does, calls the frozen executor for all completions of the batch at once, and logs the reward's
    parts through TRL's `log_metric` (and each turn with its reward through `on_turns`).
    """

    def __init__(self, mode: str, client, problems: dict, reader: ReadTurn, scorer=None, on_turns=None):
        if mode not in ("exec-only", "tracelift"):
            raise ValueError(f"unknown reward mode {mode!r}")
        if mode == "tracelift" and scorer is None:
            raise ValueError("the tracelift reward needs an RM scorer")
        self.mode, self.client, self.problems, self.scorer = mode, client, problems, scorer
        self.reader, self.on_turns = reader, on_turns
        self.__name__ = mode.replace("-", "_")
        self.last_parts: list[RewardParts] = []
        self.last_columns: dict = {}

    async def __call__(self, prompts, completions, completion_ids=None, problem_id=None, log_metric=None,
                       **columns) -> list[float]:
        import asyncio

        if problem_id is None:
            raise ValueError("the training dataset needs a problem_id column")
        self.last_columns = {"prompt": list(prompts), "problem_id": list(problem_id),
                             **{k: v for k, v in columns.items() if k not in ("trainer_state", "log_extra")}}
        problems = [self.problems[pid] for pid in problem_id]
        turns = read_completions(self.reader, completions, completion_ids)
        traces = [trace.text for _, trace in turns]
        task_type = problems[0].task_type  # an input of the reason RM
        partial = self.client.task.partial_credit
        if self.mode == "exec-only":
            per_trace, _ = await asyncio.to_thread(self.client.run, problems, traces, 1, False)
            parts = [exec_only_parts(outs[0].verdict, partial) for outs in per_trace]
        else:
            k = self.client.k
            # Executor and RM run at the same time; the executor-alone samples come from the client's memo/cache.
            (per_trace, alone), rm = await asyncio.gather(
                asyncio.to_thread(self.client.run, problems, traces, k, True),
                asyncio.to_thread(self.scorer.score, traces, [p.prompt for p in problems], task_type),
            )
            parts = [tracelift_parts([o.verdict for o in outs], [o.verdict for o in alone[p.problem_id]],
                                     float(score), partial)
                     for outs, p, score in zip(per_trace, problems, rm)]
        self.last_parts = parts
        if log_metric is not None:
            for name, value in summarize(parts).items():
                log_metric(name, value)
        if self.on_turns is not None:
            state = columns.get("trainer_state")
            self.on_turns(None if state is None else state.global_step + 1, problem_id, turns, parts)
        return [p.reward for p in parts]


class FormatReward:
    """A TRL reward function: 1 when the planner's turn is format-compliant as the evaluation counts it (its
    `tag_compliance`: in the tagged format, the plan ended within the token budget and is not blank), else 0.
    Optional (`format_weight`): with the evaluation's own turn in training, the executor reward already sees a
    plan cut at its budget; it costs no executor call."""

    def __init__(self, reader: ReadTurn):
        self.reader = reader
        self.__name__ = "format"  # TRL names the function's logged reward after it

    def __call__(self, prompts, completions, completion_ids=None, **_columns) -> list[float]:
        return [float(trace.compliant) for _, trace in read_completions(self.reader, completions, completion_ids)]


def summarize(parts: Sequence[RewardParts]) -> dict[str, float]:
    """Batch means of each reward part, named for the metrics log."""
    out: dict[str, float] = {}
    for name in ("exec", "e2e_success", "with_trace_acc", "without_trace_acc", "uplift", "rm", "coefficient"):
        values = [getattr(p, name) for p in parts if getattr(p, name) is not None]
        if values:
            out[f"parts/{name}"] = mean(values)
    return out
