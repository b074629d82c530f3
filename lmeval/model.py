"""The lm-eval model `tl-pair`: a planner writes a trace for each lm-eval prompt, a frozen executor answers it.

lm-eval's own filters and metrics score the executor's text. Importing this module registers the model with
lm-eval's registry; `python -m tl_eval.lmeval` (or `tl-eval lm-eval`) is the `lm_eval` command with it registered.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm.auto import tqdm

from tl_eval.harness.config import DEFAULT_FROZEN, PLANNER_FORMATS, SamplingSettings, resolve_cache
from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models import load_generator, parse_spec, preflight
from tl_eval.harness.pipeline.cache import Cache, CachedGenerator
from tl_eval.harness.pipeline.interventions import Condition, apply_condition, derangement, parse_conditions
from tl_eval.harness.pipeline.trace import planner_messages, read_turn
from tl_eval.harness.types import Generation, GenerationRequest, Problem, SamplingParams
from tl_eval.tasks.registry import rules_task

from tl_eval.lmeval import prompts

log = logging.getLogger(__name__)

MODEL_NAME = "tl-pair"
SUPPORTED_CONDITIONS = "full, none, truncated@F, corrupted, filler, mismatched"
# lm-eval passes these to every model; a pair runs all requests as one batch on its own backends.
_IGNORED_ARGS = ("batch_size", "max_batch_size", "device", "trust_remote_code")
# gen_kwargs keys the pair maps onto SamplingParams; others are reported once and ignored.
_KNOWN_GEN_KWARGS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "seed")


@dataclass(frozen=True)
class PairSettings:
    """Everything `--model_args` can set, checked."""

    planner: str | None  # None: the executor alone
    executor: str = "frozen"
    condition: str = "full"
    frozen_executor: str = DEFAULT_FROZEN
    cache: str | None = None  # None: tl-eval's default cache; "off": in memory
    planner_max_tokens: int = SamplingSettings.planner_max_tokens
    executor_max_tokens: int | None = None  # None: the task's max_gen_toks
    seed: int = SamplingSettings.seed
    planner_format: str = SamplingSettings.planner_format
    task_type: str = "math"  # which perturbations `corrupted` uses
    n_threads: int | None = None

    def cache_path(self) -> Path | None:
        return resolve_cache(self.cache)


def _as_int(name: str, value: Any, minimum: int = 1) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"tl-pair model arg {name}={value!r} is not an integer", f"write e.g. {name}=256") from None
    if out < minimum:
        raise ConfigError(f"tl-pair model arg {name}={value!r} must be at least {minimum}", None)
    return out


def parse_settings(**kwargs: Any) -> PairSettings:
    """Check `--model_args`; errors name the bad argument and the fix."""
    for key in _IGNORED_ARGS:
        kwargs.pop(key, None)
    allowed = {f for f in PairSettings.__dataclass_fields__ if f != "condition"} | {"conditions"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(f"tl-pair does not take model arg(s) {', '.join(unknown)}",
                          f"it accepts: {', '.join(sorted(allowed))}")
    if "planner" not in kwargs:
        raise ConfigError("tl-pair needs a planner",
                          "pass --model_args planner=SPEC,executor=SPEC (planner=none for the executor alone)")
    planner = kwargs.pop("planner")
    # lm-eval's argument parser turns the word `none` into None.
    planner = None if planner is None or str(planner).strip().lower() in ("", "none") else str(planner)
    condition = str(kwargs.pop("conditions", "full") or "full").strip().lower()
    if "," in condition:
        raise ConfigError(f"tl-pair runs one condition per lm-eval run, got conditions={condition!r}",
                          "run lm-eval once per condition, e.g. conditions=full then conditions=none")
    parsed = _parse_condition(condition)
    if planner is None:
        parsed = Condition("none")
    settings = PairSettings(planner=planner, condition=str(parsed))
    values: dict[str, Any] = {}
    for key in ("executor", "frozen_executor", "cache", "task_type", "planner_format"):
        if kwargs.get(key) is not None:
            values[key] = str(kwargs[key])
    if values.get("planner_format", SamplingSettings.planner_format) not in PLANNER_FORMATS:
        raise ConfigError(f"tl-pair model arg planner_format={values['planner_format']!r} is not a planner format",
                          f"use planner_format={' or planner_format='.join(PLANNER_FORMATS)}")
    for key, minimum in (("planner_max_tokens", 1), ("executor_max_tokens", 1), ("seed", 0), ("n_threads", 1)):
        if kwargs.get(key) is not None:
            values[key] = _as_int(key, kwargs[key], minimum)
    rules_task(values.get("task_type", "math"))  # raises ConfigError naming the known types
    return replace(settings, **values)


def _parse_condition(token: str) -> Condition:
    if token == "paraphrased":
        raise ConfigError("tl-pair does not run the `paraphrased` condition (it needs a paraphrasing model)",
                          f"use one of: {SUPPORTED_CONDITIONS}; or tl-eval's own tasks with --paraphraser")
    conds = parse_conditions(token)  # always returns full and none first, then the one asked for
    return next((c for c in conds if str(c) == token), conds[-1])


def sampling_from_gen_kwargs(gen_kwargs: dict, default_max: int, seed: int) -> SamplingParams:
    """Map lm-eval's gen_kwargs (until, max_gen_toks, do_sample, temperature, top_p) onto tl-eval's SamplingParams."""
    gen_kwargs = dict(gen_kwargs or {})
    until = gen_kwargs.get("until") or ()
    if isinstance(until, str):
        until = (until,)
    do_sample = bool(gen_kwargs.get("do_sample", False))
    temperature = float(gen_kwargs.get("temperature", 0.0) or 0.0) if do_sample else 0.0
    top_p = float(gen_kwargs.get("top_p", 1.0) or 1.0) if do_sample else 1.0
    max_tokens = int(gen_kwargs.get("max_gen_toks", default_max) or default_max)
    return SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                          seed=int(gen_kwargs.get("seed", seed)), stop=tuple(str(s) for s in until))


@register_model(MODEL_NAME)
class TLPairLM(LM):
    """A planner-executor pair as an lm-eval model; generative tasks only."""

    DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default when a task sets no max_gen_toks

    def __init__(self, **model_args: Any) -> None:
        super().__init__()
        self.settings = parse_settings(**model_args)
        s = self.settings
        self._executor_spec = parse_spec(s.executor, frozen=s.frozen_executor)
        self._planner_spec = parse_spec(s.planner, frozen=s.frozen_executor) if s.planner else None
        for spec in {x.raw: x for x in (self._planner_spec, self._executor_spec) if x is not None}.values():
            preflight(spec)
        overrides = {"n_threads": s.n_threads} if s.n_threads else {}
        loaded: dict[str, Any] = {}

        def load(spec):
            if spec.raw not in loaded:  # one copy of the weights when planner and executor are the same model
                extra = overrides if spec.kind in ("builtin", "llamacpp") else {}
                loaded[spec.raw] = load_generator(spec, frozen=s.frozen_executor, **extra)
            return loaded[spec.raw]

        self._generators = loaded
        self._cache = Cache(s.cache_path())
        self.executor = CachedGenerator(load(self._executor_spec), self._cache)
        self.planner = CachedGenerator(load(self._planner_spec), self._cache) if self._planner_spec else None
        self._warned: set[str] = set()

    # -- lm-eval interface ---------------------------------------------------------------------------

    def loglikelihood(self, requests):
        raise NotImplementedError(
            "tl-pair has no meaningful loglikelihood: a planner-executor pair only generates text. "
            "Run generative tasks (output_type: generate_until, e.g. gsm8k, or the *_cot / *_generative "
            "variants of multiple-choice tasks), or evaluate the executor alone with lm-eval's own model "
            "classes (e.g. --model gguf or --model hf) for loglikelihood tasks.")

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError(
            "tl-pair has no meaningful loglikelihood_rolling (perplexity): a planner-executor pair only "
            "generates text. Run generative tasks (output_type: generate_until) with tl-pair.")

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        s = self.settings
        # lm-eval repeats the same Instance object `repeats` times; each repeat is a distinct sample.
        seen: Counter = Counter()
        items = []
        for req in requests:
            context, gen_kwargs = req.args[0], (req.args[1] if len(req.args) > 1 else {})
            self._warn_unknown(gen_kwargs)
            index = seen[id(req)]
            seen[id(req)] += 1
            sampling = sampling_from_gen_kwargs(gen_kwargs, s.executor_max_tokens or self.DEFAULT_MAX_GEN_TOKS, s.seed)
            if s.executor_max_tokens:
                sampling = replace(sampling, max_tokens=s.executor_max_tokens)
            items.append((req, context, index, sampling))

        traces = self._plan(items, disable_tqdm)
        cond = _parse_condition(s.condition)
        partner = derangement([str(i) for i in range(len(items))], s.seed) if len(items) > 1 else {}
        exec_requests, records = [], []
        for i, (req, context, index, sampling) in enumerate(items):
            planned = traces[i]
            if planned is None:
                executor_trace, intervention = None, None
            else:
                other = partner.get(str(i))
                rules = rules_task(s.task_type)
                problem = Problem(_problem_key(req, context), rules.name, rules.task_type, context)
                iv = apply_condition(cond, planned["trace"], task=rules, problem=problem, seed=s.seed,
                                     sample_index=index,
                                     mismatched_trace=traces[int(other)]["trace"] if other is not None else None)
                executor_trace = iv.trace
                intervention = {"applied": iv.applied, "kind": iv.kind, "note": iv.note}
            msgs = tuple(prompts.executor_messages(context, executor_trace))
            exec_requests.append(GenerationRequest(msgs, sampling, index))
            records.append({**(planned or {}), "executor_trace": executor_trace, "intervention": intervention})

        outs = self._run(self.executor, exec_requests, "tl-pair: execute", disable_tqdm)
        for (req, _, index, _), record, gen in zip(items, records, outs):
            record.update(executor_finish_reason=gen.finish_reason, executor_tokens=gen.completion_tokens,
                          executor_cached=gen.cached)
            _log_trace(req, index, self._log_header(), record)
        return [_apply_stops(g.text, r.sampling.stop) for g, r in zip(outs, exec_requests)]

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Keep the chat history as JSON: planner and executor are chat models and get the turns themselves."""
        import json

        return json.dumps(chat_history, ensure_ascii=False)

    @property
    def tokenizer_name(self) -> str:
        return MODEL_NAME

    def chat_template(self, chat_template: bool | str = False) -> str:
        return "" if not chat_template else "each backend's own chat template"

    def get_model_info(self) -> dict:
        """Merged into lm-eval's results["config"]: what ran, with fingerprints."""
        return {"tl_pair": self._log_header() | {
            "planner_fingerprint": self.planner.fingerprint if self.planner else None,
            "executor_fingerprint": self.executor.fingerprint,
            "cache": str(self.settings.cache_path()) if self.settings.cache_path() else "off"}}

    # -- internals ----------------------------------------------------------------------------------

    def _log_header(self) -> dict:
        return {"planner": self._planner_spec.raw if self._planner_spec else None,
                "executor": self._executor_spec.raw, "condition": self.settings.condition}

    def _plan(self, items, disable_tqdm: bool) -> list[dict | None]:
        if self.planner is None or self.settings.condition == "none":
            return [None] * len(items)
        s = self.settings
        # The evaluation's planner turn (format, stop, seeds), greedy as lm-eval's generate_until defaults to.
        sampling = SamplingSettings(planner_max_tokens=s.planner_max_tokens, seed=s.seed,
                                    planner_format=s.planner_format).planner()
        requests = [GenerationRequest(tuple(planner_messages(prompts.planner_messages(context), s.planner_format)),
                                      sampling, index)
                    for _, context, index, _ in items]
        outs = self._run(self.planner, requests, "tl-pair: plan", disable_tqdm)
        planned = []
        for gen in outs:
            turn, trace = read_turn(gen.text, gen.finish_reason, s.planner_format)
            planned.append({"trace": trace.text, "planner_output": turn, "trace_tagged": trace.tagged,
                            "tag_compliant": trace.compliant,  # the harness's rule: closed, with content
                            "planner_finish_reason": gen.finish_reason, "planner_tokens": gen.completion_tokens,
                            "planner_cached": gen.cached})
        return planned

    @staticmethod
    def _run(gen: CachedGenerator, requests: list[GenerationRequest], desc: str, disable: bool) -> list[Generation]:
        with tqdm(total=len(requests), desc=desc, disable=disable) as bar:
            return gen.generate(requests, on_done=bar.update)

    def _warn_unknown(self, gen_kwargs: dict) -> None:
        for key in gen_kwargs or {}:
            if key not in _KNOWN_GEN_KWARGS and key not in self._warned:
                self._warned.add(key)
                log.warning("tl-pair ignores gen_kwargs %r (it maps: %s)", key, ", ".join(_KNOWN_GEN_KWARGS))

    def close(self) -> None:
        for g in self._generators.values():
            g.close()
        self._generators.clear()
        self._cache.close()


def _problem_key(req, context: str) -> str:
    """Seeds per-problem perturbations: lm-eval's task and doc id, else the prompt text."""
    if getattr(req, "doc_id", None) is not None:
        return f"{req.task_name}/{req.doc_id}"
    return context


def _apply_stops(text: str, stops: tuple[str, ...]) -> str:
    """Cut at the first stop sequence: backends that ignore `stop` (or stop late) must not leak past it."""
    cuts = [text.find(s) for s in stops if s and s in text]
    return text[: min(cuts)] if cuts else text


def _log_trace(req, index: int, header: dict, record: dict) -> None:
    """Attach the trace to the request's arguments, which lm-eval's --log_samples writes as `arg_2`."""
    args = tuple(req.arguments) if isinstance(req.arguments, tuple) else (req.arguments,)
    if len(args) >= 3 and isinstance(args[2], dict) and "tl_pair" in args[2]:
        samples = args[2]["tl_pair"]["samples"]
    else:
        samples = []
        args = args[:2] + ({"tl_pair": {**header, "samples": samples}},)
        req.arguments = args
    while len(samples) <= index:
        samples.append(None)
    samples[index] = record
