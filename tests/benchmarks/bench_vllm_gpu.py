"""For a machine with an NVIDIA GPU: the vLLM backend's throughput, and its greedy outputs against the CPU path's.

Runs the executor-alone prompts of the first N HumanEval problems (greedy) through `vllm:MODEL` (all requests in
one `generate`, which vLLM batches internally) and prints requests/s and completion tokens/s; then the first
`--compare` of them through `hf:MODEL?device=cpu` (transformers on the CPU, float32) and prints how many
outputs are equal. Different kernels and dtypes can flip a greedy token at a near tie, so a few differing
outputs are expected; many mean a settings mismatch (chat template, stop strings, max tokens).
Needs `pip install -e '.[gpu]'` and the model's weights (a hub id, or a local folder where the hub is
unreachable). The requests, timing and comparisons are shared with bench_vllm_cpu.py (vllm_common.py). Usage:
  python tests/benchmarks/bench_vllm_gpu.py [--model Qwen/Qwen2.5-Coder-0.5B-Instruct] [--limit 164]
      [--compare 5] [--max-tokens 512]
"""

from __future__ import annotations

import argparse

from vllm_common import completion_tokens, equal_texts, executor_alone_requests, load_tasks, passed, start_up, timed

from tl_eval.harness.models import load_generator, preflight


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="Qwen/Qwen2.5-Coder-0.5B-Instruct")
    ap.add_argument("--limit", type=int, default=164)
    ap.add_argument("--compare", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=512)
    args = ap.parse_args()
    (task, problems), = load_tasks(["humaneval"], args.limit)
    requests = executor_alone_requests(task, problems, args.max_tokens)

    preflight(f"vllm:{args.model}")
    # Engine start-up and CUDA graphs are not throughput: the first request is answered once before timing.
    gen, start_seconds = start_up(lambda: load_generator(f"vllm:{args.model}"), requests[0])
    with gen:
        gpu, seconds = timed(gen, requests)
    print(f"vllm:{args.model}: engine start {start_seconds:.1f} s; {len(requests)} requests in {seconds:.1f} s = "
          f"{len(requests) / seconds:.2f} requests/s, {completion_tokens(gpu) / seconds:.0f} completion tokens/s")

    with load_generator(f"hf:{args.model}?device=cpu&dtype=float32") as cpu_gen:
        cpu, _ = timed(cpu_gen, requests[: args.compare])
    print(f"greedy outputs equal to the CPU path (hf, float32): {equal_texts(gpu[: len(cpu)], cpu)} of {len(cpu)}")
    ok = sum(passed(task, problems, gpu))
    print(f"executor-alone pass@1 on the GPU outputs: {ok}/{len(problems)} = {ok / len(problems):.3f}")
    task.close()


if __name__ == "__main__":
    main()
