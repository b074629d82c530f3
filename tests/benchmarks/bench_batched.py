"""The llama.cpp backend's batched path against its sequential one, on the same requests in one run.

HumanEval executor-alone prompts and tagged planner prompts of the first N problems; prints completion tokens per
second of `?batch=1` and `?batch=B`, their ratio, and which outputs differ (greedy). With `--temperature T` every
request is sampled, `--samples K` times each (the trainer's executor calls); sampled outputs differ between the
two paths by design (each draws with its own sampler), so only the throughput is compared.
Usage: python tests/benchmarks/bench_batched.py [--limit 10] [--max-tokens 256] [--batch 8] [--options flash_attn=1]
       [--temperature 0.5 --samples 3]
"""

from __future__ import annotations

import argparse
import time

from tl_eval.harness.models import load_generator
from tl_eval.harness.pipeline.trace import planner_messages
from tl_eval.harness.task import get_task
from tl_eval.harness.types import GenerationRequest, SamplingParams

MODEL = "builtin:qwen2.5-coder-0.5b-instruct"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--options", default="", help="more spec options for both runs, e.g. flash_attn=1")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--samples", type=int, default=1, help="samples per prompt (sample indices 0..K-1)")
    args = ap.parse_args()
    task = get_task("humaneval")
    problems = task.load(None)[: args.limit]
    sampling = SamplingParams(args.temperature, 1.0, args.max_tokens, 1234)
    plan = SamplingParams(args.temperature, 1.0, args.max_tokens, 1234, ("</reasoning>", *task.planner_stops))
    requests = [GenerationRequest(tuple(task.executor_messages(p, None)), sampling, k)
                for p in problems for k in range(args.samples)]
    requests += [GenerationRequest(tuple(planner_messages(task.planner_messages(p), "tagged")), plan, k)
                 for p in problems for k in range(args.samples)]
    outs, rates = {}, {}
    for b in (1, args.batch):
        with load_generator(f"{MODEL}?batch={b}" + (f"&{args.options}" if args.options else "")) as gen:
            start = time.perf_counter()
            outs[b] = gen.generate(requests)
            seconds = time.perf_counter() - start
        tokens = sum(g.completion_tokens for g in outs[b])
        rates[b] = tokens / seconds
        print(f"batch={b}: {seconds:.1f} s, {tokens} completion tokens, {rates[b]:.1f} tokens/s")
    print(f"throughput ratio batch={args.batch} / batch=1: {rates[args.batch] / rates[1]:.2f}")
    if args.temperature == 0:
        differ = [i for i, (a, c) in enumerate(zip(outs[1], outs[args.batch])) if a.text != c.text]
        print(f"outputs that differ: {len(differ)} of {len(requests)} ({sum(i < len(problems) for i in differ)} "
              f"executor, {sum(i >= len(problems) for i in differ)} planner)")


if __name__ == "__main__":
    main()
