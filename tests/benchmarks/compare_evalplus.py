"""tl-eval against evalplus on the same GGUF file: executor-alone pass@1 side by side, and every disagreement.

evalplus's own pipeline: the builtin executor served by `python -m llama_cpp.server`, evalplus's codegen through
its OpenAI-compatible backend (its default instruct prompt, greedy, its sanitizer), then `evalplus.evaluate
--base_only`. tl-eval: `--planner none` on the same problems. Each harness's programs are then judged by the
other's tests too, so that a disagreement is put in one class:

  tests       the same program gets different verdicts from the two harnesses (time limits, tolerance, rules)
  extraction  one harness's extractor, run on the other's raw answer, flips that answer's verdict
  length      the losing side's answer was cut off by its token limit
  prompt      the two answers differ for the prompt's sake (neither cut off, both extractors agree)

evalplus's data files (HumanEvalPlus, MbppPlus) are GitHub release files this machine cannot reach, so the script
writes override files in their schema: HumanEval with `base_input` recorded by running the original `check()`
on the canonical solution (exactly the original tests' inputs), MBPP from the sanitized subset (the set MBPP+
was built from) with the inputs of its `test_list`, and evalplus's prompt form (docstring + first test).
evalplus runs the programs with its own guard, outside tl-eval's sandbox: run this on outputs of models you trust.

Usage: python tests/benchmarks/compare_evalplus.py [--dataset humaneval|mbpp] [--limit N] [--work DIR]
Needs TL_EVAL_DATA_DIR for mbpp. Both sides resume: evalplus from its samples file, tl-eval from its cache.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.config import RunConfig, default_data_dir
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.models import parse_spec
from tl_eval.harness.models.llamacpp import gguf_path
from tl_eval.harness.results import load_samples
from tl_eval.harness.task import get_task

MODEL = "builtin:qwen2.5-coder-0.5b-instruct"
EVALPLUS_MAX_TOKENS = 768  # evalplus's DecoderBase default; the openai backend does not let codegen change it
TL_TASK = {"humaneval": "humaneval", "mbpp": "mbpp_sanitized"}

# Runs the trusted reference under the original tests with the entry point wrapped, to collect the inputs the
# tests feed it (HumanEval's base_input is exactly these). In a subprocess: the tests import and print freely.
RECORDER = r"""
import copy, json, sys
rows, out = json.load(sys.stdin), {}
for row in rows:
    ns, calls = {}, []
    try:
        exec(compile(row["setup"], "<reference>", "exec"), ns)
        ref = ns[row["entry_point"]]
        def recorder(*args, **kwargs):
            if not kwargs:
                calls.append(copy.deepcopy(list(args)))
            return ref(*args, **kwargs)
        ns[row["entry_point"]] = recorder
        exec(compile(row["tests"], "<tests>", "exec"), ns)
    except BaseException as exc:
        print(f"{row['task_id']}: the reference stops under its own tests ({exc!r}); kept {len(calls)} inputs",
              file=sys.stderr)
    def as_json(x):  # tuples become lists, as in evalplus's own files; None where JSON would change the value
        if isinstance(x, (list, tuple)):
            items = [as_json(v) for v in x]
            return None if any(v is None and w is not None for v, w in zip(items, x)) else items
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                return None
            items = {k: as_json(v) for k, v in x.items()}
            return None if any(items[k] is None and x[k] is not None for k in x) else items
        if isinstance(x, float) and x != x or x in (float("inf"), float("-inf")):
            return None
        return x if x is None or isinstance(x, (bool, int, float, str)) else None
    if row["task_id"].startswith("Mbpp/"):  # evalplus stores a few MBPP inputs as strings (complex numbers, ...)
        from evalplus.data.mbpp import mbpp_serialize_inputs
        calls = mbpp_serialize_inputs(row["task_id"], calls)
    kept, seen, dropped = [], set(), 0
    for args in calls:
        value = as_json(args)
        if value is None:
            dropped += 1
            continue
        text = json.dumps(value)
        if text not in seen:
            seen.add(text)
            kept.append(value)
    if dropped:
        print(f"{row['task_id']}: {dropped} test input(s) JSON cannot hold (int dict keys, sets, ...) left out",
              file=sys.stderr)
    out[row["task_id"]] = kept
json.dump(out, sys.stdout)
"""


@dataclass
class Side:
    """One harness's answer to one problem: raw output, extracted program, verdicts under both harnesses' tests."""

    raw: str
    program: str | None
    truncated: bool
    own: bool = False  # verdict of its own harness
    other: bool = False  # verdict of the other harness's tests on the same program


def evalplus_rows(dataset: str, problems: list) -> list[dict]:
    """The chosen problems in evalplus's schema, base inputs recorded from the original tests."""
    rows, jobs = [], []
    for p in problems:
        if dataset == "humaneval":
            task_id, prompt = p.problem_id, p.prompt
            canonical = p.reference[len(p.prompt):]
            tests = f"{p.metadata['test']}\ncheck({p.entry_point})\n"
        else:
            task_id = f"Mbpp/{p.metadata['task_id']}"
            text = p.prompt.split("\nYour code should pass this test:\n")[0]
            prompt = f'"""\n{text}\n{p.metadata["test_list"][0]}\n"""\n'
            canonical = p.reference
            tests = "\n".join(p.metadata["test_list"]) + "\n"
        rows.append({"task_id": task_id, "prompt": prompt, "entry_point": p.entry_point, "contract": "",
                     "canonical_solution": canonical, "plus_input": [], "atol": 0})
        jobs.append({"task_id": task_id, "entry_point": p.entry_point, "tests": tests,
                     "setup": (prompt + canonical) if dataset == "humaneval" else p.reference})
    done = subprocess.run([sys.executable, "-c", RECORDER], input=json.dumps(jobs), capture_output=True,
                          text=True, timeout=600, check=True)
    sys.stderr.write(done.stderr)
    inputs = json.loads(done.stdout)
    for row in rows:
        row["base_input"] = inputs[row["task_id"]]
    return rows


def _die_with_parent() -> None:
    """In the child: get SIGKILL when this script dies, so that no server or codegen outlives an interrupted run
    (two codegens appending to one samples file would duplicate its rows)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(log: Path):
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path(parse_spec(MODEL))),
           "--n_ctx", "4096", "--n_threads", str(os.cpu_count()), "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(240):
            if proc.poll() is not None:
                raise SystemExit(f"llama_cpp.server exited with {proc.returncode}; see {log}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            time.sleep(0.5)
        yield url
    finally:
        proc.kill()  # a server busy generating ignores SIGTERM
        proc.wait(timeout=30)


def evalplus_codegen(dataset: str, work: Path, override: Path) -> Path:
    """evalplus's codegen through the OpenAI backend; resumes from its samples file."""
    env = {**os.environ, _override_var(dataset): str(override), "OPENAI_API_KEY": "none"}
    with llama_server(work / "llama_server.log") as url:
        subprocess.run([sys.executable, "-m", "evalplus.codegen", "--model", "qwen2.5-coder-0.5b-instruct-q4_k_m",
                        "--dataset", dataset, "--backend", "openai", "--base-url", url, "--greedy",
                        "--root", str(work / "evalplus")], env=env, check=True, stdout=subprocess.DEVNULL,
                       preexec_fn=_die_with_parent)
    samples = list((work / "evalplus" / dataset).glob("*_openai_temp_0.0.jsonl"))
    if len(samples) != 1:
        raise SystemExit(f"expected one evalplus samples file, found {samples}")
    return samples[0]


def evalplus_evaluate(dataset: str, samples: Path, override: Path) -> dict[str, bool]:
    """evalplus.evaluate on base tests: task_id -> pass."""
    env = {**os.environ, _override_var(dataset): str(override)}
    result = Path(str(samples).replace(".jsonl", "_eval_results.json"))
    result.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "evalplus.evaluate", "--dataset", dataset, "--samples", str(samples),
                    "--base_only", "--i_just_wanna_run"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    evals = json.loads(result.read_text())["eval"]
    return {tid: runs[0]["base_status"] == "pass" for tid, runs in evals.items()}


def _override_var(dataset: str) -> str:
    return "HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"


def tl_eval_run(task_name: str, limit: int, work: Path, data_dir: Path | None) -> tuple[list, dict]:
    cfg = RunConfig(tasks=[task_name], planner="none", limit=limit, output=str(work / "runs"),
                    cache=str(work / "tl_cache.sqlite"), data_dir=str(data_dir) if data_dir else None,
                    run_id="compare")
    run_dir, _ = run(prepare(cfg), show_progress=True, log=print)
    return load_samples(run_dir, task_name), cfg


def n_tokens(text: str) -> int:
    from llama_cpp import Llama

    if not _VOCAB:
        _VOCAB.append(Llama(model_path=str(gguf_path(parse_spec(MODEL))), vocab_only=True, verbose=False))
    return len(_VOCAB[0].tokenize(text.encode(), add_bos=False, special=False))


_VOCAB: list = []  # the tokenizer, loaded once


def classify(e: Side, t: Side, e_by_tl_extract: bool, t_by_ep_extract: bool) -> str:
    """Why the two harnesses disagree on one problem (e: evalplus's side, t: tl-eval's)."""
    if e.own != e.other or t.own != t.other:
        return "tests"
    loser = e if t.own else t
    if loser is e and e_by_tl_extract != e.own or loser is t and t_by_ep_extract != t.own:
        return "extraction"
    if loser.truncated:
        return "length"
    return "prompt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["humaneval", "mbpp"], default="humaneval")
    ap.add_argument("--limit", type=int, default=None, help="first N problems (default: all)")
    ap.add_argument("--work", type=Path, default=Path("runs/compare_evalplus"),
                    help="work directory; reuse it to resume (default: runs/compare_evalplus)")
    args = ap.parse_args()
    from evalplus.sanitize import sanitize

    work = args.work / args.dataset
    work.mkdir(parents=True, exist_ok=True)
    data_dir = default_data_dir()
    task = get_task(TL_TASK[args.dataset])
    problems = task.load(data_dir)[: args.limit]
    rows = evalplus_rows(args.dataset, problems)
    override = work / ("HumanEvalPlus.jsonl" if args.dataset == "humaneval" else "MbppPlus.jsonl")
    old_ids = [json.loads(line)["task_id"] for line in override.read_text().splitlines()] if override.is_file() else []
    if old_ids != [r["task_id"] for r in rows]:
        for stale in (work / "evalplus").glob(f"{args.dataset}/*"):  # another problem set: start over
            stale.unlink()
    override.write_text("".join(json.dumps(r) + "\n" for r in rows))

    print(f"[1/3] evalplus codegen on {len(rows)} problems ({args.dataset}) ...", flush=True)
    samples = evalplus_codegen(args.dataset, work, override)
    print("[2/3] tl-eval --planner none ...", flush=True)
    tl_samples, _ = tl_eval_run(task.name, len(problems), work, data_dir)

    print("[3/3] judging each harness's programs with both harnesses' tests ...", flush=True)
    ids = {p.problem_id: r["task_id"] for p, r in zip(problems, rows)}
    by_pid = {p.problem_id: p for p in problems}
    ep_raw = {json.loads(line)["task_id"]: json.loads(line)["solution"]
              for line in Path(str(samples).replace(".jsonl", ".raw.jsonl")).read_text().splitlines() if line}
    ep_code = {json.loads(line)["task_id"]: json.loads(line)["solution"]
               for line in samples.read_text().splitlines() if line}
    tl = {s.problem_id: s for s in tl_samples if s.condition == "none"}
    cross = {}  # name -> {task_id: code} judged by evalplus
    cross["ep_own"] = ep_code
    cross["tl_programs"] = {ids[pid]: (s.artifact or "") for pid, s in tl.items()}
    cross["tl_raw_by_ep_sanitize"] = {ids[pid]: sanitize(s.executor_output, entrypoint=by_pid[pid].entry_point)
                                      for pid, s in tl.items()}
    ep_verdicts = {}
    for name, codes in cross.items():
        path = work / f"judge_{name}.jsonl"
        path.write_text("".join(json.dumps({"task_id": tid, "solution": code}) + "\n" for tid, code in codes.items()))
        ep_verdicts[name] = evalplus_evaluate(args.dataset, path, override)

    pids = list(ids)
    tl_plist = [by_pid[pid] for pid in pids]
    def tl_judge(codes: list[str | None]) -> dict[str, bool]:
        verdicts = task.verify(tl_plist, codes, [c or "" for c in codes])
        return {pid: v.status == "pass" for pid, v in zip(pids, verdicts)}
    tl_on_ep = tl_judge([ep_code[ids[pid]] or None for pid in pids])
    tl_on_ep_raw = tl_judge([task.extract(by_pid[pid], ep_raw[ids[pid]]) for pid in pids])
    task.close()

    rows_out, classes = [], {}
    for pid in pids:
        tid, s = ids[pid], tl[pid]
        # evalplus keeps no finish reason; re-tokenizing the text can differ from the generated tokens by a few.
        e = Side(ep_raw[tid], ep_code[tid], n_tokens(ep_raw[tid]) >= EVALPLUS_MAX_TOKENS - 8,
                 ep_verdicts["ep_own"][tid], tl_on_ep[pid])
        t = Side(s.executor_output, s.artifact, s.executor_finish_reason == "length",
                 s.status == "pass", ep_verdicts["tl_programs"][tid])
        if e.own != t.own:
            why = classify(e, t, tl_on_ep_raw[pid], ep_verdicts["tl_raw_by_ep_sanitize"][tid])
            classes.setdefault(why, []).append(pid)
            rows_out.append((pid, "evalplus" if e.own else "tl-eval", why))

    n = len(pids)
    ep_pass = sum(ep_verdicts["ep_own"][ids[p]] for p in pids)
    tl_pass = sum(tl[p]["status"] == "pass" for p in pids)
    print(f"\n{args.dataset}: {n} problems, {MODEL} (greedy, same GGUF file)")
    print(f"  evalplus (its prompt, sanitizer, base tests): pass@1 {100 * ep_pass / n:5.1f}%  ({ep_pass}/{n})")
    print(f"  tl-eval  (--planner none):                    pass@1 {100 * tl_pass / n:5.1f}%  ({tl_pass}/{n})")
    print(f"  cross-judged: tl-eval's tests on evalplus's programs {100 * sum(tl_on_ep.values()) / n:5.1f}%, "
          f"evalplus's tests on tl-eval's programs {100 * sum(ep_verdicts['tl_programs'].values()) / n:5.1f}%")
    from scipy.stats import binomtest

    only_ep = sum(r[1] == "evalplus" for r in rows_out)
    p_value = binomtest(only_ep, len(rows_out)).pvalue if rows_out else 1.0
    print(f"  disagreements: {len(rows_out)} (solved only by evalplus {only_ep}, only by tl-eval "
          f"{len(rows_out) - only_ep}; exact sign test of the paired difference p = {p_value:.2f})")
    for why in ("tests", "extraction", "length", "prompt"):
        if why in classes:
            print(f"    {why:<10} {len(classes[why]):3d}  {' '.join(classes[why])}")
    for pid, winner, why in rows_out:
        print(f"  {pid:<22} solved by {winner:<8} class {why}")
    for vocab in _VOCAB:
        vocab.close()
    (work / "comparison.json").write_text(json.dumps(
        {"dataset": args.dataset, "n": n, "evalplus_pass": ep_pass, "tl_eval_pass": tl_pass, "sign_test_p": p_value,
         "disagreements": [{"problem_id": p, "solved_by": w, "class": c} for p, w, c in rows_out]}, indent=1))


if __name__ == "__main__":
    main()
