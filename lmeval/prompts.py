"""Planner and executor messages built around an lm-eval request context (plain text or a chat history)."""

from __future__ import annotations

import json

from tl_eval.harness.types import Message

# Same wording as tl-eval's own tasks, made generic: lm-eval contexts may hold few-shot examples before the
# problem, so the planner is pointed at the last one.
PLANNER_INSTRUCTION = (
    "Think about how to solve the task above (if it shows solved examples, solve the last, unsolved one). "
    "Write a step-by-step reasoning trace inside <reasoning>...</reasoning> tags. "
    "Do not state the final answer and do not write the final code."
)
TRACE_BLOCK = "Provided reasoning:\n{trace}\n\nUse the provided reasoning as guidance if it is helpful."


def context_messages(context: str) -> list[Message]:
    """The request context as chat messages: a chat history that `apply_chat_template` encoded, else one user turn."""
    stripped = context.lstrip()
    if stripped.startswith("[{"):
        try:
            history = json.loads(stripped)
        except json.JSONDecodeError:
            history = None
        if isinstance(history, list) and history and all(isinstance(m, dict) and "role" in m for m in history):
            return [{"role": str(m["role"]), "content": str(m.get("content", ""))} for m in history]
    return [{"role": "user", "content": context}]


def _with_last_user(messages: list[Message], suffix: str) -> list[Message]:
    """Append `suffix` to the last user turn (a trailing assistant prefill is dropped: chat backends cannot continue it)."""
    out = [dict(m) for m in messages]
    while out and out[-1]["role"] == "assistant":
        out.pop()
    if not out or out[-1]["role"] != "user":
        out.append({"role": "user", "content": ""})
    body = out[-1]["content"].rstrip()
    out[-1]["content"] = f"{body}\n\n{suffix}" if body else suffix
    return out


def planner_messages(context: str) -> list[Message]:
    """The lm-eval prompt followed by the planner instruction (a `<reasoning>` trace, no final answer)."""
    return _with_last_user(context_messages(context), PLANNER_INSTRUCTION)


def executor_messages(context: str, trace: str | None) -> list[Message]:
    """The lm-eval prompt as is (`trace=None`: the executor alone), else followed by the trace and the guidance line."""
    messages = context_messages(context)
    if trace is None:
        return messages
    return _with_last_user(messages, TRACE_BLOCK.format(trace=trace.strip()))
