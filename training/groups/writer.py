"""Model-written traces for the groups builder (`--writer SPEC`): MBPP reference plans and wrong-strategy negatives."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tl_eval.harness.models.base import Generator
from tl_eval.harness.types import GenerationRequest, SamplingParams

SYSTEM = "You write short, numbered reasoning plans. You never write code and never state a final answer."

PLAN_PROMPT = """Problem:
{problem}

Reference solution:
```python
{solution}
```

Write a numbered, step-by-step plan (3 to 8 steps) that a programmer could follow to write this solution.
Describe the approach in words; do not write code. Output only the plan."""

WRONG_STRATEGY_PROMPT = """Problem:
{problem}

A correct plan:
{plan}

Write a different plan for the same problem that looks plausible but follows a wrong strategy, so that
following it gives a wrong result. Keep the same style and length (numbered steps, no code, no final answer).
Do not say that it is wrong. Output only the plan."""


def open_writer(spec: str) -> Generator:
    """A Generator for `spec` through the harness's model factory (any backend), checked before use."""
    from tl_eval.harness.models import load_generator, preflight

    preflight(spec)
    return load_generator(spec)


def clean_plan(text: str) -> str:
    """The plan part of a model answer: tags, code fences and chatter around it removed."""
    m = re.search(r"<reasoning>(.*?)(?:</reasoning>|$)", text, re.S)
    text = m.group(1) if m else text
    text = re.sub(r"```.*?(```|$)", "", text, flags=re.S)
    return text.strip()


def _ask(writer: Generator, prompts: Sequence[str], max_tokens: int, seed: int) -> list[str]:
    sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=seed)
    reqs = [GenerationRequest(({"role": "system", "content": SYSTEM}, {"role": "user", "content": p}), sampling)
            for p in prompts]
    return [clean_plan(g.text) for g in writer.generate(reqs)]


def write_plans(writer: Generator, problems: Sequence[str], solutions: Sequence[str], *,
                max_tokens: int = 256, seed: int = 0) -> list[str]:
    return _ask(writer, [PLAN_PROMPT.format(problem=p, solution=s) for p, s in zip(problems, solutions)],
                max_tokens, seed)


def write_wrong_strategies(writer: Generator, problems: Sequence[str], plans: Sequence[str], *,
                           max_tokens: int = 256, seed: int = 0) -> list[str]:
    return _ask(writer, [WRONG_STRATEGY_PROMPT.format(problem=p, plan=t) for p, t in zip(problems, plans)],
                max_tokens, seed)
