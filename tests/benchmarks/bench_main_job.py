"""README's main job (builtin planner and executor, 10 HumanEval problems) with this code and with an older commit,
one after the other in this one run, each with an empty cache of its own.

The old commit's packages are extracted with `git archive` into a temporary `tl_eval/` folder that comes first on
PYTHONPATH, so the same virtual environment runs both. Prints each wall time and `main job speed-up (old / new): R`
(target >= 2). Usage: python tests/benchmarks/bench_main_job.py [--old 19dad9f] [--limit 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "tasks", "training", "reports", "lmeval")
MAIN = "from tl_eval.harness.cli import main; main()"


def extract(rev: str, dest: Path) -> Path:
    """The commit's packages as an importable `tl_eval` namespace under `dest`."""
    root = dest / "tl_eval"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    archive = subprocess.run(["git", "archive", rev, *PACKAGES], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return dest


def main_job(pythonpath: Path | None, work: Path, limit: int) -> float:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    cmd = [sys.executable, "-c", MAIN, "--planner", "builtin:qwen2.5-coder-0.5b-instruct", "--executor", "frozen",
           "--tasks", "humaneval", "--limit", str(limit), "--output", str(work / "runs"),
           "--cache", str(work / "cache.sqlite"), "--quiet"]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"the main job failed ({out.returncode}):\n{out.stderr[-2000:]}")
    lines = [line for line in out.stdout.splitlines() if "humaneval" in line]
    print(f"  {lines[0].strip() if lines else ''}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default="19dad9f", help="the commit to compare with (default: before the throughput work)")
    ap.add_argument("--limit", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old_code = extract(args.old, tmp / "old-code")
        (tmp / "old").mkdir()
        (tmp / "new").mkdir()
        print(f"old ({args.old}):")
        old = main_job(old_code, tmp / "old", args.limit)
        print(f"  {old:.1f} s")
        print("new (this working tree):")
        new = main_job(None, tmp / "new", args.limit)
        print(f"  {new:.1f} s")
    print(f"main job speed-up (old / new): {old / new:.2f}   target >= 2")


if __name__ == "__main__":
    main()
