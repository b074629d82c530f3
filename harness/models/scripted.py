"""Deterministic rule-based models for tests and reference baselines (`scripted:NAME`); no network, no weights."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Sequence

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models.base import Generator, split_prefill
from tl_eval.harness.models.spec import ModelSpec
from tl_eval.harness.types import Generation, GenerationRequest, Message

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_TOKEN_RE = re.compile(r"\S+")


class ScriptedModel:
    """Subclass for full control: read `self.options`, answer in `respond`. Bump `version` when outputs change."""

    version = "1"
    options_allowed: tuple[str, ...] | None = ()  # None: any option

    def __init__(self, options: dict[str, str]):
        self.options = options

    def respond(self, messages: list[Message], request: GenerationRequest) -> str:
        raise NotImplementedError


class _FunctionModel(ScriptedModel):
    """Adapts a plain `fn(messages) -> str`."""

    fn: Callable[[list[Message]], str]

    def respond(self, messages: list[Message], request: GenerationRequest) -> str:
        return type(self).fn(messages)


class Echo(ScriptedModel):
    """Answers with the last user message."""

    def respond(self, messages: list[Message], request: GenerationRequest) -> str:
        return next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")


class Constant(ScriptedModel):
    """Answers every request with `?text=...`."""

    options_allowed = ("text",)

    def respond(self, messages: list[Message], request: GenerationRequest) -> str:
        return self.options.get("text", "")


_REGISTRY: dict[str, type[ScriptedModel]] = {"echo": Echo, "constant": Constant}


def register_scripted(name: str, fn: Callable[[list[Message]], str] | type[ScriptedModel]) -> None:
    """Register `scripted:NAME`: a function of the messages, or a ScriptedModel subclass. Re-registering replaces."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"bad scripted model name {name!r}", "use lowercase letters, digits, '.', '_' and '-'")
    if isinstance(fn, type) and issubclass(fn, ScriptedModel):
        _REGISTRY[name] = fn
    elif callable(fn):
        _REGISTRY[name] = type(f"Scripted_{name}", (_FunctionModel,), {"fn": staticmethod(fn)})
    else:
        raise ConfigError(f"scripted model {name!r} must be a function or a ScriptedModel subclass", None)


def scripted_names() -> list[str]:
    """Names of every registered scripted model."""
    return sorted(_REGISTRY)


def _model_class(spec: ModelSpec) -> type[ScriptedModel]:
    cls = _REGISTRY.get(spec.target)
    if cls is None:
        close = difflib.get_close_matches(spec.target, list(_REGISTRY), n=1)
        hint = f" (did you mean 'scripted:{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown scripted model {spec.target!r}{hint}",
            f"registered: {', '.join(scripted_names())}; add one with harness.models.register_scripted(name, fn)",
        )
    allowed = cls.options_allowed
    if allowed is not None:
        extra = sorted(set(spec.options) - set(allowed))
        if extra:
            raise ConfigError(
                f"scripted:{spec.target} does not take option(s) {', '.join(extra)}",
                f"it accepts: {', '.join(allowed) or 'no options'}",
            )
    return cls


def count_tokens(text: str) -> int:
    """Whitespace tokens, the unit scripted models report."""
    return len(_TOKEN_RE.findall(text))


def _truncate(text: str, request: GenerationRequest) -> tuple[str, str]:
    cuts = [text.find(s) for s in request.sampling.stop if s and s in text]
    if cuts:
        text = text[: min(cuts)]
    limit = request.sampling.max_tokens
    tokens = list(_TOKEN_RE.finditer(text))
    if len(tokens) > limit:
        return (text[: tokens[limit - 1].end()] if limit > 0 else ""), "length"
    return text, "stop"


class ScriptedGenerator(Generator):
    """Runs a registered scripted model; honours stop strings and max_tokens in whitespace tokens."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec.raw
        self._name = spec.target
        self._options = dict(spec.options)
        self._cls = _model_class(spec)
        self._model = self._cls(dict(spec.options))

    def fingerprint(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted(self._options.items()))
        return f"scripted:{self._name}?{query}#v{self._cls.version}"

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        results = []
        for i, request in enumerate(requests):
            start = time.perf_counter()
            messages = [dict(m) for m in request.messages]
            _, prefill = split_prefill(messages)
            reply = str(self._model.respond(messages, request))
            # A script writes the whole reply; with a prefill the model only continues it, so what the prefill
            # already says is not generated again.
            if prefill and reply.startswith(prefill.strip()):
                reply = reply[len(prefill.strip()):]
            text, finish = _truncate(reply, request)
            gen = Generation(
                text=text,
                finish_reason=finish,
                prompt_tokens=sum(count_tokens(m.get("content", "")) for m in messages),
                completion_tokens=count_tokens(text),
                seconds=time.perf_counter() - start,
            )
            results.append(gen)
            if on_done is not None:
                on_done(i, gen)
        return results
