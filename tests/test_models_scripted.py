"""Scripted models: registry, builtin ones, stop/max_tokens handling, token counts, fingerprints."""

from __future__ import annotations

import pytest

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models import ScriptedModel, load_generator, preflight, register_scripted
from tl_eval.harness.types import GenerationRequest, SamplingParams


def _req(text: str, **sampling) -> GenerationRequest:
    return GenerationRequest(
        messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": text}),
        sampling=SamplingParams(**sampling),
    )


def test_echo_returns_last_user_message_with_whitespace_token_counts():
    gen = load_generator("scripted:echo")
    seen = []
    out = gen.generate([_req("add two numbers"), _req("x")], on_done=lambda i, g: seen.append((i, g.text)))
    assert [g.text for g in out] == ["add two numbers", "x"]
    assert seen == [(0, "add two numbers"), (1, "x")]
    assert (out[0].prompt_tokens, out[0].completion_tokens, out[0].finish_reason) == (5, 3, "stop")


def test_constant_honours_stop_and_max_tokens():
    gen = load_generator("scripted:constant?text=one two three END four")
    assert gen.generate([_req("q")])[0].text == "one two three END four"
    stopped = gen.generate([_req("q", stop=(" END",))])[0]
    assert (stopped.text, stopped.finish_reason) == ("one two three", "stop")
    cut = gen.generate([_req("q", max_tokens=2)])[0]
    assert (cut.text, cut.finish_reason, cut.completion_tokens) == ("one two", "length", 2)


def test_register_function_and_class():
    register_scripted("test-upper", lambda messages: messages[-1]["content"].upper())
    assert load_generator("scripted:test-upper").generate([_req("abc")])[0].text == "ABC"

    class Leaker(ScriptedModel):
        options_allowed = ("answer",)

        def respond(self, messages, request):
            return f"<reasoning>the answer is {self.options['answer']}</reasoning> seed={request.sampling.seed}"

    register_scripted("test-leaker", Leaker)
    out = load_generator("scripted:test-leaker?answer=42").generate([_req("q", seed=7)])[0]
    assert out.text == "<reasoning>the answer is 42</reasoning> seed=7"
    with pytest.raises(ConfigError, match="does not take option"):
        load_generator("scripted:test-leaker?answr=1")


def test_unknown_scripted_name_suggests_and_preflight_catches_it():
    with pytest.raises(ConfigError, match="did you mean 'scripted:echo'"):
        load_generator("scripted:ecko")
    with pytest.raises(ConfigError, match="unknown scripted model"):
        preflight("scripted:nope-not-registered")
    preflight("scripted:echo")


def test_bad_registration_is_refused():
    with pytest.raises(ConfigError, match="bad scripted model name"):
        register_scripted("Has Space", lambda m: "")
    with pytest.raises(ConfigError, match="must be a function"):
        register_scripted("not-callable", "text")


def test_fingerprint_depends_on_name_and_options_only():
    a = load_generator("scripted:constant?text=a").fingerprint()
    assert a == load_generator("scripted:constant?text=a").fingerprint()
    assert a != load_generator("scripted:constant?text=b").fingerprint()
    assert a != load_generator("scripted:echo").fingerprint()
