"""For a machine with an NVIDIA GPU: the vLLM backend's throughput, and its greedy outputs against the CPU path's.

Runs the executor-alone prompts of the first N HumanEval problems (greedy) through `vllm:MODEL` (all requests in
one `generate`, which vLLM batches internally) and prints requests/s and completion tokens/s; then the first
`--compare` of them through `hf:MODEL?device=cpu` (transformers on the CPU, float32) and prints how many
outputs are equal. Different kernels and dtypes can flip a greedy token at a near tie, so a few differing
outputs are expected; many mean a settings mismatch (chat template, stop strings, max tokens).
Needs `pip install -e '.[gpu]'` and the model's weights (a hub id, or a local folder where the hub is
unreachable). Usage:
  python tests/benchmarks/bench_vllm_gpu.py [--model Qwen/Qwen2.5-Coder-0.5B-Instruct] [--limit 164]
      [--compare 5] [--max-tokens 512]
"""

from __future__ import annotations

import argparse
import time

from tl_eval.harness.config import VerifierSettings
from tl_eval.harness.evaluate import load_task_problems
from tl_eval.harness.models import load_generator, preflight
from tl_eval.harness.types import GenerationRequest, SamplingParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="Qwen/Qwen2.5-Coder-0.5B-Instruct")
    ap.add_argument("--limit", type=int, default=164)
    ap.add_argument("--compare", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=512)
    args = ap.parse_args()
    (task, problems, _), = load_task_problems(["humaneval"], VerifierSettings(), limit=args.limit)
    sampling = SamplingParams(0.0, 1.0, args.max_tokens, 1234)
    requests = [GenerationRequest(tuple(task.executor_messages(p, None)), sampling, 0) for p in problems]

    preflight(f"vllm:{args.model}")
    with load_generator(f"vllm:{args.model}") as gen:
        gen.generate(requests[:1])  # engine start-up and CUDA graphs are not throughput
        start = time.perf_counter()
        gpu = gen.generate(requests)
        seconds = time.perf_counter() - start
    tokens = sum(g.completion_tokens for g in gpu)
    print(f"vllm:{args.model}: {len(requests)} requests in {seconds:.1f} s = {len(requests) / seconds:.2f} "
          f"requests/s, {tokens / seconds:.0f} completion tokens/s")

    with load_generator(f"hf:{args.model}?device=cpu&dtype=float32") as cpu_gen:
        cpu = cpu_gen.generate(requests[: args.compare])
    equal = sum(a.text == b.text for a, b in zip(gpu, cpu))
    print(f"greedy outputs equal to the CPU path (hf, float32): {equal} of {len(cpu)}")
    passed = sum(v.passed for v in task.verify(problems, [task.extract(p, g.text) for p, g in zip(problems, gpu)],
                                               [g.text for g in gpu]))
    print(f"executor-alone pass@1 on the GPU outputs: {passed}/{len(problems)} = {passed / len(problems):.3f}")
    task.close()


if __name__ == "__main__":
    main()
