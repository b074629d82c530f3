"""Harness overhead: the same HumanEval generations through tl-eval and through bare llama-cpp-python.

Prints harness wall time / bare generation time (target <= 1.10) and re-run time / first-run time
(target <= 0.05). Both are measured in this one run, on this machine, so the ratios hold on a noisy box.
Usage: python tests/benchmarks/bench_pipeline.py [--limit 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.models import parse_spec
from tl_eval.harness.models.llamacpp import gguf_path
from tl_eval.harness.models.seeds import request_seed
from tl_eval.harness.results import load_samples
from tl_eval.harness.task import get_task
from tl_eval.harness.types import GenerationRequest, SamplingParams

MODEL = "builtin:qwen2.5-coder-0.5b-instruct"


def harness_run(limit: int, max_tokens: int, out: Path, cache: Path) -> tuple[float, dict, Path]:
    cfg = RunConfig(tasks=["humaneval"], planner=MODEL, executor="frozen", limit=limit,
                    planner_max_tokens=max_tokens, executor_max_tokens=max_tokens,
                    output=str(out), cache=str(cache), run_id="bench",
                    # The bare baseline can only make plain chat calls: compare like with like (the tagged format's
                    # prefilled raw completion is one llama.cpp call too, through create_completion).
                    planner_format="free")
    start = time.perf_counter()
    run_dir, results = run(prepare(cfg), show_progress=False, log=lambda m: None)
    return time.perf_counter() - start, results, run_dir


def bare_run(requests: list[GenerationRequest]) -> tuple[float, int]:
    from llama_cpp import Llama

    start = time.perf_counter()
    llama = Llama(model_path=str(gguf_path(parse_spec(MODEL))), n_ctx=4096, n_threads=os.cpu_count(),
                  n_threads_batch=os.cpu_count(), verbose=False)
    tokens = 0
    for r in requests:
        llama.reset()
        out = llama.create_chat_completion(messages=list(r.messages), temperature=r.sampling.temperature,
                                           top_p=r.sampling.top_p, top_k=0, min_p=0.0,
                                           max_tokens=r.sampling.max_tokens, seed=request_seed(r))
        tokens += out["usage"]["completion_tokens"]
    return time.perf_counter() - start, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first, results, run_dir = harness_run(args.limit, args.max_tokens, tmp / "runs", tmp / "cache.sqlite")
        again, results2, _ = harness_run(args.limit, args.max_tokens, tmp / "runs", tmp / "cache.sqlite")

        # Rebuild exactly the requests the harness made, from its samples file.
        task = get_task("humaneval")
        problems = {p.problem_id: p for p in task.load(None)}
        sampling = SamplingParams(0.0, 1.0, args.max_tokens, 1234)
        requests, seen = [], set()
        for s in load_samples(run_dir, "humaneval"):
            p = problems[s.problem_id]
            for msgs in (task.planner_messages(p), task.executor_messages(p, s.executor_trace)):
                key = repr(msgs)
                if key not in seen:
                    seen.add(key)
                    requests.append(GenerationRequest(tuple(msgs), sampling, 0))
        bare, bare_tokens = bare_run(requests)

    calls = results.model_calls
    harness_tokens = sum(st["completion_tokens"] for st in results.tasks["humaneval"].cost["stages"].values())
    print(f"generations: {len(requests)} (harness model calls: planner {calls['planner']}, "
          f"executor {calls['executor']}); completion tokens harness {harness_tokens}, bare {bare_tokens}")
    print(f"bare llama-cpp-python: {bare:.1f} s · tl-eval first run: {first:.1f} s · re-run: {again:.2f} s "
          f"(model calls {sum(results2['model_calls'].values())})")
    print(f"overhead ratio (tl-eval / bare): {first / bare:.3f}   target <= 1.10")
    print(f"re-run ratio (re-run / first run): {again / first:.4f}   target <= 0.05")


if __name__ == "__main__":
    main()
