"""Throughput of a tl-eval run against bare llama-cpp-python and against this machine's limits, in one run.

The default invocation is a `--conditions faithfulness` run of the first 10 HumanEval problems (builtin planner
and executor, greedy). It prints, on the same prompts:
- completion tokens per second of tl-eval (the whole run: planning, every condition, verification) and of bare
  sequential llama-cpp-python (a plain `Llama` answering the run's distinct requests one after another with its
  default settings, including its own reuse of the previous prompt's prefix);
- the machine's bounds for this model, measured here: memory bandwidth ÷ bytes read per decode step (the GGUF's
  weights, read once per step of one sequence) and, for batched decoding, the compute bound (the model's prefill
  rate: a decode step of many sequences can go no faster than a prompt chunk of as many tokens);
- `throughput ratio vs bare sequential: R` (target >= 2), the prompt tokens computed against those requested
  (prefix reuse), and the cached re-run's time relative to the first run (target <= 0.05);
- what an extra condition costs (target <= 0.6 of the first): the executor seconds of a `full`-only run, then of
  the other conditions added to it on the same cache (plans and `full` cached), per added condition. In one run
  all conditions are decoded in one batch, so the run's per-condition split (its stage costs, wall time shared
  by generated tokens) cannot show what a condition adds; the marginal cost can (slightly overstated: the added
  run prefills the problem's shared prefix once more, which the one-run batch computes once).
The planner runs in the free format so that bare llama-cpp-python can make the same plain chat calls.
Usage: python tests/benchmarks/bench_pipeline.py [--limit 10] [--max-tokens 128] [--conditions faithfulness]
       [--options batch=1&flash_attn=0]   (spec options of tl-eval's model; the default is the backend's)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.models import parse_spec
from tl_eval.harness.models.llamacpp import gguf_path
from tl_eval.harness.models.seeds import request_seed
from tl_eval.harness.results import load_samples
from tl_eval.harness.task import get_task
from tl_eval.harness.types import GenerationRequest, SamplingParams

MODEL = "builtin:qwen2.5-coder-0.5b-instruct"


def harness_run(args, out: Path, cache: Path, conditions: str | None = None, run_id: str = "bench"):
    spec = MODEL + (f"?{args.options}" if args.options else "")
    cfg = RunConfig(tasks=["humaneval"], planner=spec, executor=spec, limit=args.limit,
                    planner_max_tokens=args.max_tokens, executor_max_tokens=args.max_tokens,
                    conditions=(conditions or args.conditions).split(","), output=str(out), cache=str(cache),
                    run_id=run_id, planner_format="free")
    start = time.perf_counter()
    run_dir, result = run(prepare(cfg), show_progress=False, log=lambda m: None)
    return time.perf_counter() - start, result, run_dir


def executor_seconds(result) -> float:
    return sum(v["seconds"] for k, v in result.tasks["humaneval"].cost["stages"].items() if k.startswith("execute:"))


def distinct_requests(run_dir: Path, max_tokens: int) -> list[GenerationRequest]:
    """The planner and executor requests of the run, each once, in the order the run made them."""
    task = get_task("humaneval")
    problems = {p.problem_id: p for p in task.load(None)}
    sampling = SamplingParams(0.0, 1.0, max_tokens, 1234)
    samples = [s for s in load_samples(run_dir, "humaneval") if s.status is not None]
    seen, planner, executor = set(), [], []
    for s in samples:
        p = problems[s.problem_id]
        for msgs, bucket in ((task.planner_messages(p), planner), (task.executor_messages(p, s.executor_trace), executor)):
            if repr(msgs) not in seen:
                seen.add(repr(msgs))
                bucket.append(GenerationRequest(tuple(msgs), sampling, 0))
    return planner + executor


def _llama():
    from llama_cpp import Llama

    return Llama(model_path=str(gguf_path(parse_spec(MODEL))), n_ctx=4096, n_threads=os.cpu_count(),
                 n_threads_batch=os.cpu_count(), verbose=False)


def bare_run(requests: list[GenerationRequest]) -> tuple[float, int]:
    start = time.perf_counter()
    llama = _llama()
    tokens = 0
    for r in requests:
        out = llama.create_chat_completion(messages=list(r.messages), temperature=0.0, top_p=1.0, top_k=0,
                                           min_p=0.0, max_tokens=r.sampling.max_tokens, seed=request_seed(r))
        tokens += out["usage"]["completion_tokens"]
    llama.close()
    return time.perf_counter() - start, tokens


def memory_bandwidth(mib: int = 512, repeats: int = 5) -> float:
    """Bytes per second of a large copy (each byte read once and written once), the best of `repeats`."""
    src = np.ones(mib * 2**20 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def prefill_rate(n_tokens: int = 1024) -> float:
    """Prompt tokens per second of one long prompt: the compute bound of a decode step of many sequences."""
    llama = _llama()
    prompt = " ".join(f"item {i}," for i in range(n_tokens))
    tokens = llama.tokenize(prompt.encode())[:n_tokens]
    llama.eval(tokens[:8])  # warm-up
    llama.reset()
    start = time.perf_counter()
    llama.eval(tokens)
    seconds = time.perf_counter() - start
    llama.close()
    return len(tokens) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--conditions", default="faithfulness")
    ap.add_argument("--options", default="", help="spec options of tl-eval's model, e.g. batch=1&flash_attn=0")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first, result, run_dir = harness_run(args, tmp / "runs", tmp / "cache.sqlite")
        again, result2, _ = harness_run(args, tmp / "runs", tmp / "cache.sqlite")
        requests = distinct_requests(run_dir, args.max_tokens)
        _, alone, _ = harness_run(args, tmp / "runs", tmp / "marginal.sqlite", "full", "full-only")
        _, added, _ = harness_run(args, tmp / "runs", tmp / "marginal.sqlite", run_id="added")
    bare, bare_tokens = bare_run(requests)
    bandwidth = memory_bandwidth()
    weights = gguf_path(parse_spec(MODEL)).stat().st_size
    compute = prefill_rate()

    stages = result.tasks["humaneval"].cost["stages"]
    tl_tokens = sum(s["completion_tokens"] for s in stages.values())
    tl_rate, bare_rate, mem_bound = tl_tokens / first, bare_tokens / bare, bandwidth / weights
    print(f"run: {args.limit} HumanEval problems, conditions {args.conditions}, max tokens {args.max_tokens}, "
          f"model options {args.options or '(defaults)'}; {len(requests)} distinct requests; model calls "
          f"planner {result.model_calls['planner']}, executor {result.model_calls['executor']}")
    print(f"completion tokens/s: tl-eval {tl_rate:.1f} ({tl_tokens} in {first:.1f} s) · bare sequential "
          f"llama-cpp-python {bare_rate:.1f} ({bare_tokens} in {bare:.1f} s)")
    print(f"machine bounds: memory bandwidth {bandwidth / 1e9:.1f} GB/s ÷ {weights / 1e6:.0f} MB per decode step = "
          f"{mem_bound:.1f} tokens/s for one sequence; compute bound for batched decode (prefill rate) "
          f"{compute:.1f} tokens/s")
    print(f"tl-eval / memory bound {tl_rate / mem_bound:.2f} · tl-eval / compute bound {tl_rate / compute:.2f} · "
          f"bare / memory bound {bare_rate / mem_bound:.2f}")
    print(f"throughput ratio vs bare sequential: {tl_rate / bare_rate:.2f}   target >= 2")
    executor = {k.split(":", 1)[1]: v["seconds"] for k, v in stages.items() if k.startswith("execute:")}
    print("executor seconds per condition (the run's split by generated tokens): "
          + ", ".join(f"{c} {s:.1f}" for c, s in executor.items()))
    if len(executor) > 1:
        full = executor_seconds(alone)
        extra = executor_seconds(added)
        n_extra = len(executor) - 1
        print(f"executor seconds: full alone {full:.1f}; the other {n_extra} conditions added on its cache "
              f"{extra:.1f}, {extra / n_extra:.1f} per condition")
        print(f"extra condition cost ratio (added per condition / full alone): {extra / n_extra / full:.2f}"
              "   target <= 0.6")
    prompt_requested = sum(s["prompt_tokens"] for s in stages.values())
    prompt_computed = sum(s.get("prompt_tokens_computed", s["prompt_tokens"]) for s in stages.values())
    print(f"prompt tokens requested {prompt_requested}, computed {prompt_computed} "
          f"({prompt_computed / max(prompt_requested, 1):.0%}; the rest was a prefix already in the KV cache)")
    print(f"re-run ratio (re-run / first run): {again / first:.4f} (model calls {sum(result2.model_calls.values())})"
          "   target <= 0.05")


if __name__ == "__main__":
    main()
