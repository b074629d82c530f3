"""Grade a run's real math outputs with tl-eval and with its peers, and list every disagreement.

    python tests/benchmarks/compare_math_graders.py RUN_DIR [RUN_DIR ...] [--task gsm8k] [--rulings FILE]
    python tests/benchmarks/compare_math_graders.py --from /tmp/math-outputs.txt   # lines "TASK RUN_DIR"
    python tests/benchmarks/compare_math_graders.py RUN_DIR --regrade [--entry baselines/entries/X.json]

Graders, each on the executor's own text:
- `tl-strict`: tl-eval's `strict` pipeline (this checkout's grader);
- `lm-strict-match`, `lm-flexible-extract`: lm-eval's gsm8k filters, built by lm-eval's own code
  (`build_filter_ensemble` over `Instance`s) from the filter list of the gsm8k task YAML as installed, scored
  by lm-eval's `exact_match` with that YAML's metric options against the reference lm-eval uses (the whole
  GSM8K `answer` field; MATH-500's `answer`);
- `math-verify`: Math-Verify alone, `parse` of the whole completion and of the gold, then `verify`.

A rulings file (JSON: {"TASK PROBLEM_ID": {"right": "pass" | "fail", "note": "..."}}) records who is right
on each disagreement; the script then counts, per grader, how many disagreements it got right and names
every one where tl-strict is wrong. `--regrade` lists the problems whose recorded verdict (the run's
samples) differs from this grader's; with `--entry`, the same against a leaderboard entry's outcomes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GRADERS = ("tl-strict", "lm-strict-match", "lm-flexible-extract", "math-verify")


def load_outputs(run_dir: Path, task: str, condition: str | None) -> list[dict]:
    """One row per problem (sample 0) of the run: id, the executor's text, the recorded verdict and gold."""
    from tl_eval.harness.results import load_samples

    rows = []
    for r in load_samples(run_dir, task):
        if r.sample_index != 0 or r.status is None or (condition and r.condition != condition):
            continue
        if condition is None and r.condition not in ("none", "full"):
            continue
        rows.append({"problem_id": r.problem_id, "condition": r.condition, "text": r.executor_output or "",
                     "recorded": bool(r.passed), "gold": (r.verdict_details or {}).get("gold")})
    return rows


def references(task: str, data_dir: Path) -> dict[str, dict]:
    """The dataset rows by problem id (`gsm8k/i`, `math500/i`), for lm-eval's reference and the gold."""
    rel = {"gsm8k": "gsm8k/test.jsonl", "math500": "math500/test.jsonl"}[task]
    lines = (data_dir / rel).read_text(encoding="utf-8").splitlines()
    return {f"{task}/{i}": json.loads(line) for i, line in enumerate(lines) if line.strip()}


def gold_of(task: str, row: dict) -> str:
    from tl_eval.harness.verify.math_grader import gold_from_gsm8k

    return gold_from_gsm8k(row["answer"]) if task == "gsm8k" else str(row["answer"])


def lm_eval_grades(texts: list[str], refs: list[str]) -> dict[str, list[tuple[bool, str]]]:
    """(exact_match, filtered answer) per text for each filter of lm-eval's installed gsm8k task."""
    import lm_eval
    import yaml
    from lm_eval.api.instance import Instance
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters import build_filter_ensemble

    config = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks/gsm8k/gsm8k.yaml").read_text())
    (metric,) = [m for m in config["metric_list"] if m["metric"] == "exact_match"]
    options = {k: metric[k] for k in ("regexes_to_ignore", "ignore_case", "ignore_punctuation") if k in metric}
    out = {}
    for spec in config["filter_list"]:
        ensemble = build_filter_ensemble(spec["name"], [
            (f["function"], {k: v for k, v in f.items() if k != "function"}) for f in spec["filter"]])
        instances = []
        for i, (text, ref) in enumerate(zip(texts, refs)):
            inst = Instance(request_type="generate_until", doc={"answer": ref}, arguments=("", {}), idx=0)
            inst.resps = [text]
            instances.append(inst)
        ensemble.apply(instances)
        answers = [inst.filtered_resps[spec["name"]] for inst in instances]
        out[f"lm-{spec['name']}"] = [
            (exact_match_hf_evaluate([a], [ref], **options)["exact_match"] == 1.0, a)
            for a, ref in zip(answers, refs)]
    return out


def math_verify_grades(texts: list[str], golds: list[str]) -> list[tuple[bool, str]]:
    """Math-Verify on its own: its extraction from the whole completion, its comparison with the gold."""
    from math_verify import parse, verify

    out = []
    for text, gold in zip(texts, golds):
        try:
            gold_parsed = parse(f"${gold}$")
            pred = parse(text)
            out.append((bool(verify(gold_parsed, pred)), str(pred[-1]) if pred else "[none]"))
        except Exception as exc:  # noqa: BLE001  (its own timeouts raise; a crash is a miss, not a pass)
            out.append((False, f"[error {type(exc).__name__}]"))
    return out


def grade_run(task: str, run_dir: Path, data_dir: Path, condition: str | None) -> list[dict]:
    from tl_eval.harness.verify.math_grader import MathGrader

    rows = load_outputs(run_dir, task, condition)
    data = references(task, data_dir)
    golds = [gold_of(task, data[r["problem_id"]]) for r in rows]
    texts = [r["text"] for r in rows]
    with MathGrader("strict", timeout_s=10.0) as grader:
        tl = grader.grade(texts, golds)
    lm = lm_eval_grades(texts, [str(data[r["problem_id"]]["answer"]) for r in rows])
    mv = math_verify_grades(texts, golds)
    for r, gold, v, i in zip(rows, golds, tl, range(len(rows))):
        r["task"], r["gold"] = task, gold
        r["verdicts"] = {"tl-strict": v.passed, **{k: lm[k][i][0] for k in lm}, "math-verify": mv[i][0]}
        r["answers"] = {"tl-strict": v.details.get("extracted_strict"), **{k: lm[k][i][1] for k in lm},
                        "math-verify": mv[i][1]}
    return rows


def report(rows: list[dict], rulings: dict, show_text: int) -> dict:
    """Print the disagreements and the count table; return the counts."""
    counts: dict = {"problems": len(rows), "pass": Counter(), "disagreements": 0,
                    "with_tl": Counter(), "right_on_disagreements": Counter(), "ruled": 0, "tl_wrong": []}
    for r in rows:
        for g in GRADERS:
            counts["pass"][g] += r["verdicts"][g]
        if len(set(r["verdicts"].values())) == 1:
            continue
        counts["disagreements"] += 1
        for g in GRADERS[1:]:
            counts["with_tl"][g] += r["verdicts"][g] != r["verdicts"]["tl-strict"]
        key = f"{r['task']} {r['problem_id']}"
        ruling = rulings.get(key)
        print(f"\n--- {key} (gold {r['gold']!r}) " + "  ".join(
            f"{g}={'P' if r['verdicts'][g] else 'F'}:{str(r['answers'][g])[:40]!r}" for g in GRADERS))
        if ruling:
            counts["ruled"] += 1
            right = ruling["right"] == "pass"
            for g in GRADERS:
                counts["right_on_disagreements"][g] += bool(r["verdicts"][g]) == right  # numpy bools: not `is`
            if bool(r["verdicts"]["tl-strict"]) != right:
                counts["tl_wrong"].append(key)
            print(f"    ruling: {ruling['right']} ({ruling.get('note', '')})")
        else:
            print("    ruling: none recorded")
        if show_text:
            print("    text tail: " + json.dumps(r["text"][-show_text:]))
    print(f"\n{len(rows)} outputs, {counts['disagreements']} with a disagreement, {counts['ruled']} ruled")
    print(f"{'grader':22} {'pass':>5} {'differs from tl-strict':>23} {'right on disagreements':>23}")
    for g in GRADERS:
        differs = "-" if g == "tl-strict" else counts["with_tl"][g]
        right = counts["right_on_disagreements"][g] if counts["ruled"] else "-"
        print(f"{g:22} {counts['pass'][g]:5} {differs!s:>23} {right!s:>23}")
    if counts["tl_wrong"]:
        print("tl-strict wrong on: " + ", ".join(counts["tl_wrong"]))
    return counts


def regrade(rows: list[dict], entry: Path | None) -> list[str]:
    """Problems whose recorded verdict (run samples, or an entry's outcomes) differs from this grader's."""
    recorded = {(r["condition"], r["problem_id"]): r["recorded"] for r in rows}
    if entry is not None:
        outcomes = json.loads(entry.read_text())["outcomes"]
        recorded = {(c, pid): v >= 1.0 for task in outcomes.values() for c, vec in task.items()
                    for pid, v in vec.items()}
    changed = []
    for r in rows:
        before = recorded.get((r["condition"], r["problem_id"]))
        if before is not None and before != r["verdicts"]["tl-strict"]:
            changed.append(f"{r['condition']} {r['problem_id']}: {'pass' if before else 'fail'} -> "
                           f"{'pass' if r['verdicts']['tl-strict'] else 'fail'} (now {r['answers']['tl-strict']!r},"
                           f" gold {r['gold']!r})")
    print(f"\n{len(changed)} verdicts change against {'the entry ' + entry.name if entry else 'the run'}:")
    for line in changed:
        print("  " + line)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--from", dest="from_file", type=Path, help="file of lines 'TASK RUN_DIR'")
    parser.add_argument("--task", default="gsm8k", help="task of the RUN_DIR arguments")
    parser.add_argument("--condition", default=None, help="condition to grade (default: none or full)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TL_EVAL_DATA_DIR")
                                                              or REPO.parent / "shared" / "data"))
    parser.add_argument("--rulings", type=Path, default=None)
    parser.add_argument("--show-text", type=int, default=300, help="characters of each disagreeing text shown")
    parser.add_argument("--regrade", action="store_true", help="list verdicts that change against the record")
    parser.add_argument("--entry", type=Path, default=None, help="a baselines/entries/*.json to regrade against")
    parser.add_argument("--json", type=Path, default=None, help="write every graded row here")
    args = parser.parse_args(argv)
    runs = [(args.task, p) for p in args.runs]
    if args.from_file:
        runs += [(t, Path(p)) for t, p in (line.split(None, 1) for line in
                                             args.from_file.read_text().splitlines() if line.strip())]
    if not runs:
        parser.error("give run directories or --from FILE")
    rulings = json.loads(args.rulings.read_text()) if args.rulings else {}
    all_rows = []
    for task, run_dir in runs:
        print(f"\n===== {task}: {run_dir}")
        rows = grade_run(task, run_dir.expanduser().resolve(), args.data_dir, args.condition)
        report(rows, rulings, args.show_text)
        if args.regrade:
            regrade(rows, args.entry)
        all_rows += rows
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=1, default=bool))  # numpy bools from the graders
    return 0


if __name__ == "__main__":
    sys.exit(main())
