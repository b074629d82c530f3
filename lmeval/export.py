"""Write a tl-eval run directory in lm-eval's results layout, so tools that read lm-eval outputs read tl-eval runs.

Layout (as `lm_eval --output_path OUT --log_samples` writes it):
`OUT/<model_name_sanitized>/results_<timestamp>.json` and `.../samples_<task>_<timestamp>.jsonl`.
The lm-eval "filter" of every metric and sample row is the tl-eval trace condition (full, none, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tl_eval.harness.config import VerifierSettings
from tl_eval.harness.errors import DataError
from tl_eval.harness.metrics.specs import higher_is_better
from tl_eval.harness.records import SampleRecord
from tl_eval.harness.results import load_results, load_samples
from tl_eval.harness.types import Problem



@dataclass(frozen=True)
class LmEvalExport:
    """Where an export went."""

    model_dir: Path
    results_path: Path
    samples_paths: dict[str, Path]  # task -> samples file


def sanitize_model_name(name: str) -> str:
    """lm-eval's folder name for a model (same rule as lm_eval.utils; copied so exporting needs no lm-eval)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _timestamp(created: str | None) -> tuple[str, float]:
    """lm-eval's file timestamp (`isoformat` with ':' -> '-') and the UNIX date, from config.json's `created`."""
    try:
        when = datetime.strptime(created or "", "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        raise DataError(f"config.json has no readable 'created' time ({created!r})",
                        "re-run the evaluation with this version of tl-eval") from None
    stamp = when.replace(tzinfo=None).isoformat(timespec="microseconds").replace(":", "-")
    return stamp, when.timestamp()


def _problems(task: str, cfg: dict, data_dir: str | None):
    """The run's problems, reloaded for their prompts and gold answers (the run directory keeps only ids)."""
    from tl_eval.harness.evaluate import load_task_problems

    verifier = VerifierSettings(math_pipeline=cfg.get("math_pipeline", VerifierSettings.math_pipeline))
    try:
        (loaded_task, problems, _), = load_task_problems([task], verifier, data_dir or cfg.get("data_dir"))
    except DataError as e:
        raise DataError(f"cannot reload the problems of task {task!r} to export them: {e.problem}",
                        "pass --data-dir pointing at the benchmark data the run used") from e
    return loaded_task, {p.problem_id: p for p in problems}


def _prompt_text(messages: list[dict]) -> str:
    """lm-eval's arg_0 is one prompt string: the user turn, or the chat as JSON when there are several turns."""
    if len(messages) == 1:
        return messages[0]["content"]
    return json.dumps(messages, ensure_ascii=False)


def _doc(problem: Problem) -> dict:
    doc = {"problem_id": problem.problem_id, "prompt": problem.prompt}
    for key in ("answer", "entry_point"):
        if getattr(problem, key) is not None:
            doc[key] = getattr(problem, key)
    return doc


def _stderr(values: list[float]) -> float | str:
    """Standard error of a mean, as lm-eval's `mean_stderr` computes it (sample stdev / sqrt(n))."""
    n = len(values)
    if n < 2:
        return "N/A"
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _gen_kwargs(cfg: dict) -> dict:
    temperature = float(cfg.get("temperature", 0.0))
    return {"until": [], "max_gen_toks": cfg.get("executor_max_tokens"), "do_sample": temperature > 0,
            "temperature": temperature, "top_p": cfg.get("top_p", 1.0), "seed": cfg.get("seed")}


def _task_rows(task_obj, problems: dict[str, Problem], problem_ids: list[str], records: list[dict],
               header: dict, gen_kwargs: dict) -> tuple[list[dict], dict[str, list[float]]]:
    """One lm-eval sample row per problem and condition, and each condition's per-problem pass rates."""
    doc_ids = {pid: i for i, pid in enumerate(problem_ids)}
    grouped: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for r in records:
        grouped[(r.condition, r.problem_id)].append(r)
    conditions = list(dict.fromkeys(r.condition for r in records))
    rows, rates = [], defaultdict(list)
    for cond in conditions:
        for pid in problem_ids:
            recs = sorted(grouped.get((cond, pid), []), key=lambda r: r.sample_index)
            if not recs:
                continue
            problem = problems.get(pid)
            if problem is None:
                raise DataError(f"problem {pid!r} of the run is not in the task's data any more",
                                "pass --data-dir with the data the run used")
            prompt = _prompt_text(task_obj.executor_messages(problem, recs[0].executor_trace))
            doc, target = _doc(problem), task_obj.gold_target(problem)
            rate = sum(bool(r.passed) for r in recs) / len(recs)
            rates[cond].append(rate)
            artifacts = [r.artifact if r.artifact is not None else "[invalid]" for r in recs]
            keep = ("trace", "planner_output", "trace_tagged", "tag_compliant", "planner_finish_reason",
                    "planner_tokens", "executor_trace", "intervention", "executor_finish_reason", "executor_tokens",
                    "status", "failing_test", "leakage")
            arg2 = {"tl_pair": {**header, "condition": cond,
                                "samples": [{k: row[k] for k in keep} for row in (r.to_json() for r in recs)]}}
            rows.append({
                "doc_id": doc_ids[pid], "doc": doc, "target": target,
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs, "arg_2": arg2}},
                "resps": [[r.executor_output or "" for r in recs]],
                "filtered_resps": [artifacts[0] if len(artifacts) == 1 else artifacts],
                "filter": cond, "metrics": ["pass@1"],
                "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False)),
                "prompt_hash": _hash(prompt), "target_hash": _hash(target),
                "pass@1": rate,
            })
    return rows, rates


def export_run(run_dir: str | Path, output: str | Path | None = None, data_dir: str | None = None) -> LmEvalExport:
    """Write `run_dir` as lm-eval results under `output` (default RUN_DIR/lm-eval); re-exporting rewrites the same files."""
    run_dir = Path(run_dir)
    result = load_results(run_dir)
    config = result.config
    cfg = config.get("config") or {}
    run_id = result.run_id or run_dir.name
    stamp, date = _timestamp(config.get("created"))
    model_dir = Path(output) if output else run_dir / "lm-eval"
    model_dir = model_dir / sanitize_model_name(run_id)
    model_dir.mkdir(parents=True, exist_ok=True)

    planner = (config.get("planner") or {}).get("spec", result.systems.get("planner"))
    executor = (config.get("executor") or {}).get("spec", result.systems.get("executor"))
    header = {"planner": planner, "executor": executor}
    gen_kwargs = _gen_kwargs(cfg)
    tl_version = result.versions.get("tl-eval")

    out: dict = {"results": {}, "group_subtasks": {}, "configs": {}, "versions": {}, "n-shot": {},
                 "higher_is_better": {}, "n-samples": {}, "task_hashes": {}}
    samples_paths: dict[str, Path] = {}
    seconds = 0.0
    for task, task_result in result.tasks.items():
        flat = {"alias": task, **task_result.flat()}
        task_info = (config.get("tasks") or {}).get(task, {})
        problem_ids = task_info.get("problem_ids") or []
        records = load_samples(run_dir, task)
        task_obj, problems = _problems(task, cfg, data_dir)
        try:
            rows, rates = _task_rows(task_obj, problems, problem_ids, records, header, gen_kwargs)
        finally:
            task_obj.close()

        metrics = {k: v for k, v in flat.items() if k != "alias"}
        for cond, values in rates.items():
            if f"pass@1,{cond}" in metrics:
                metrics[f"pass@1_stderr,{cond}"] = _stderr(values)
        out["results"][task] = {"name": task, "alias": flat.get("alias", task), "sample_len": len(problem_ids),
                                **metrics}
        out["group_subtasks"][task] = []
        names = sorted({k.partition(",")[0] for k in metrics if "_stderr," not in k})
        # A name without a spec gets None ("no arrow" in lm-eval's table).
        out["higher_is_better"][task] = {m: higher_is_better(m) for m in names}
        out["configs"][task] = {
            "task": task, "dataset_path": task_info.get("source"), "output_type": "generate_until",
            "test_split": "test", "num_fewshot": 0, "generation_kwargs": gen_kwargs,
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": out["higher_is_better"][task][m]}
                            for m in names],
            "filter_list": [{"name": c, "filter": [{"function": "tl_eval_condition", "condition": c}]}
                            for c in rates],
            "metadata": {"version": tl_version,
                         "tl_eval": {k: v for k, v in task_info.items() if k != "problem_ids"}},
        }
        out["versions"][task] = tl_version
        out["n-shot"][task] = 0
        out["n-samples"][task] = result.n_samples.get(task) or {
            "original": len(problem_ids), "effective": len(problem_ids)}
        out["task_hashes"][task] = _hash("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
        stages = task_result.cost.get("stages") or {}
        seconds += sum(float(s.get("seconds") or 0.0) for s in stages.values())

        path = model_dir / f"samples_{task}_{stamp}.jsonl"
        with path.with_suffix(".tmp").open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        path.with_suffix(".tmp").replace(path)
        samples_paths[task] = path

    out["config"] = {
        "model": "tl-pair", "model_args": {"planner": planner, "executor": executor}, "batch_size": None,
        "batch_sizes": [], "device": None, "use_cache": cfg.get("cache"), "limit": cfg.get("limit"),
        "bootstrap_iters": 0, "gen_kwargs": gen_kwargs, "random_seed": cfg.get("seed"),
        "numpy_seed": cfg.get("seed"), "torch_seed": cfg.get("seed"), "fewshot_seed": cfg.get("seed"),
        "tl_eval": config,
    }
    out.update({
        "git_hash": config.get("git"), "date": date, "tl_eval_version": tl_version,
        "model_source": "tl-pair", "model_name": run_id, "model_name_sanitized": sanitize_model_name(run_id),
        "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": False,
        "chat_template": None, "chat_template_sha": None, "total_evaluation_time_seconds": str(seconds),
    })
    results_path = model_dir / f"results_{stamp}.json"
    tmp = results_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(results_path)
    return LmEvalExport(model_dir, results_path, samples_paths)
