"""The planner's turn in training: the evaluation's own turn (harness.pipeline.trace.planner_turn), rendered as
the evaluation's transformers backend renders it, decoded with the same budget and stops, and read as the
evaluation reads it. Nothing here decides what the turn is; it only hands that turn to TRL."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models.hf import chat_prompt
from tl_eval.harness.pipeline.trace import PlannerTurn, Trace, cut_at_stops, planner_turn, read_turn
from tl_eval.harness.task import Task
from tl_eval.harness.types import Problem


def training_turns(task: Task, problems: Sequence[Problem], settings) -> list[PlannerTurn]:
    return [planner_turn(task, p, settings) for p in problems]


def prompt_texts(tokenizer, turns: Sequence[PlannerTurn]) -> list[str]:
    """The prompts as text (TRL then tokenizes them as they are): a conversational prompt would go through TRL's
    own templating, which is not the evaluation's for a prefilled turn."""
    texts = [chat_prompt(tokenizer, t.messages) for t in turns]
    # TRL tokenizes a text prompt with the tokenizer's special tokens, the evaluation without them.
    if texts and tokenizer(texts[0])["input_ids"] != tokenizer(texts[0], add_special_tokens=False)["input_ids"]:
        raise ConfigError("the planner's tokenizer adds special tokens (e.g. a BOS) to a text prompt, so TRL's "
                          "prompt tokens would differ from the evaluation's",
                          "train a planner whose chat template writes its own special tokens (ChatML models do)")
    return texts


def decoding(turns: Sequence[PlannerTurn]) -> PlannerTurn:
    """The one budget and stop set of a training run (TRL has one generation config for all prompts)."""
    settings = {(t.sampling.max_tokens, t.sampling.stop, t.fmt) for t in turns}
    if len(settings) != 1:
        raise ConfigError(f"training problems ask for different planner turns: {sorted(settings)}",
                          "train on one task at a time")
    return turns[0]


def generation_kwargs(turn: PlannerTurn, use_vllm: bool) -> dict:
    """GRPOConfig.generation_kwargs that stop a completion where the evaluation's planner turn stops."""
    if not turn.sampling.stop:
        return {}
    return {"stop": list(turn.sampling.stop)} if use_vllm else {"stop_strings": list(turn.sampling.stop)}


def pass_tokenizer_to_generate(model, tokenizer) -> None:
    """transformers' generate honours `stop_strings` only when it is given the tokenizer, which TRL's generation
    path does not pass; the model's own generate gets it bound."""
    model.generate = functools.partial(model.generate, tokenizer=tokenizer)


class TurnReader:
    """Reads a TRL completion (the continuation of the prompt's prefill) into the trace the evaluation would
    read from the same text: cut at the first stop, and closed unless the token budget ran out first."""

    def __init__(self, turn: PlannerTurn, eos_token_ids: Sequence[int] = ()):
        self.fmt, self.stops, self.budget = turn.fmt, turn.sampling.stop, turn.sampling.max_tokens
        self.eos = set(eos_token_ids)  # the trainer sets TRL's own once it is built

    def __call__(self, text: str, token_ids: Sequence[int] | None) -> tuple[str, Trace]:
        body, stopped = cut_at_stops(text, self.stops)
        if token_ids is None:
            ended = stopped
        else:
            ended = stopped or len(token_ids) < self.budget or (bool(token_ids) and token_ids[-1] in self.eos)
        return read_turn(body, "stop" if ended else "length", self.fmt)
