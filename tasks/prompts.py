"""Planner and executor prompts, after the TraceLift paper; short because the default models are 0.5B on a CPU."""

from __future__ import annotations

from tl_eval.harness.types import Message, Problem

# Plans, not solutions: a short list of steps, no code and no final answer (the masked condition measures what
# a trace that breaks this rule still buys). Short because a 0.5B planner otherwise runs out of tokens.
PLANNER_CODE = (
    "{problem}\n\n"
    "Plan how to solve this programming problem. Inside <reasoning>...</reasoning> tags, write a short plan "
    "of at most six numbered steps: what the function must do, the approach, the edge cases. "
    "Do not write any code."
)
PLANNER_MATH = (
    "{problem}\n\n"
    "Plan how to solve this math problem. Inside <reasoning>...</reasoning> tags, write a short plan of at "
    "most six numbered steps: which quantities to find and how to combine them. Do not state the final answer."
)
TRACE_BLOCK = "Provided reasoning:\n{trace}\n\nUse the provided reasoning as guidance if it is helpful.\n\n"
EXECUTOR_CODE = "Write the complete Python function `{entry_point}`. Answer with one ```python code block."
EXECUTOR_SIGNATURE = (
    "Complete the function `{entry_point}`, continuing from the given signature. "
    "Answer with one ```python code block that contains the complete function."
)
EXECUTOR_MATH = "Solve the problem. End with the final answer in \\boxed{{}}."


def planner_messages(problem: Problem) -> list[Message]:
    """Ask for a `<reasoning>` trace that stops short of the final answer or code."""
    template = PLANNER_CODE if problem.task_type == "code" else PLANNER_MATH
    return [{"role": "user", "content": template.format(problem=problem.prompt.strip())}]


def executor_messages(problem: Problem, trace: str | None) -> list[Message]:
    """The problem, the trace when given, then the answer format; `trace=None` is the executor alone."""
    if problem.task_type == "code":
        template = EXECUTOR_SIGNATURE if problem.metadata.get("signature_prompt") else EXECUTOR_CODE
        instruction = template.format(entry_point=problem.entry_point)
        body = f"```python\n{problem.prompt.strip()}\n```" if problem.metadata.get("signature_prompt") \
            else problem.prompt.strip()
    else:
        instruction = EXECUTOR_MATH.format()
        body = problem.prompt.strip()
    reasoning = TRACE_BLOCK.format(trace=trace.strip()) if trace is not None else ""
    return [{"role": "user", "content": f"{body}\n\n{reasoning}{instruction}"}]
