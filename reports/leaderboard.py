"""`tl-eval leaderboard`: rows from run directories and recorded baseline entries; JSON, a static site, or a table.

Baseline entry (one JSON file per entry under `baselines/`): `{"name", "planner", "executor", "training_mode",
"checkpoint", "run_id", "run_dir" (optional), "results": <results.json content, or at least its "metrics">,
"outcomes" (optional): {task: {"full": {problem_id: pass rate}, "none": {...}}}}`. With a `run_dir` that
exists, the run's own files are read (and its samples drill down); otherwise the recorded `results` are.
The entries `tl-eval baselines run` writes carry `results`, `outcomes` of every condition they ran, and
`system` as the training mode; older ones with only flat `metrics` are read too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tl_eval.harness.errors import DataError
from tl_eval.reports.compare import Issue, RankedRow, all_issues, shared_ranks
from tl_eval.reports.fmt import cell
from tl_eval.reports.headroom import headroom
from tl_eval.reports.load import FULL, NONE, Run, Skipped, load_run, load_runs_lenient, read_json, slug
from tl_eval.reports.render import render
from tl_eval.reports.report import COST, FAITH
from tl_eval.reports.systems import MISSING, System, checkpoint_of, executor_alone_systems, pair_system, pointer

SCHEMA = "tl-eval/leaderboard"
SCHEMA_VERSION = 1
RANK_RULE = ("Rows are sorted by pass@1 on the task. A system shares the rank of the first system of its rank "
             "group unless its paired test against that system on their common problems (exact McNemar with one "
             "sample per problem, else a sign test) gives p < {alpha}; then it opens a new group whose rank is "
             "its position. Only systems scored on the same problems are ranked together; others are unranked.")
ENTRY_KEYS = ("name", "planner", "executor", "results")
# Sample fields a system page shows.
SAMPLE_FIELDS = ("condition", "status", "passed", "intervention", "executor_trace", "executor_output",
                 "executor_finish_reason", "artifact", "failing_test", "stderr")


@dataclass
class BaselineEntry:
    file: Path
    data: dict


def load_baselines(folder: str | Path) -> list[BaselineEntry]:
    """Every `*.json` under the folder that holds an object with `results`; a malformed entry raises."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"baselines folder {folder} does not exist", "pass --baselines DIR or leave it out")
    out = []
    for file in sorted(folder.rglob("*.json")):
        data = read_json(file)
        flat = "results" not in data and isinstance(data.get("metrics"), dict) and "run_id" in data
        if "results" not in data and not flat:
            continue  # recipes and other files that live beside the entries
        keys = ("name", "planner", "executor", "task") if flat else ENTRY_KEYS
        missing = [k for k in keys if k not in data]
        if missing:
            raise DataError(f"{file}: baseline entry lacks {', '.join(missing)}",
                            f"give it every key of: {', '.join(keys)} (see docs/reports.md)")
        if not flat and (not isinstance(data["results"], dict) or not isinstance(data["results"].get("metrics"), dict)):
            raise DataError(f"{file}: 'results' must hold a results.json's content with its 'metrics'",
                            "copy the run's results.json into 'results'")
        out.append(BaselineEntry(file, data))
    return out


# Flat lm-eval-style keys of a `tl-eval baselines` entry -> where results.json keeps the same number.
_FLAT = {"pair_pass@1,full": ("conditions", FULL, "pass@k", "1"), "exec_pass@1,none": ("conditions", NONE, "pass@k", "1"),
         "uplift,full": ("uplift", "uplift"), "uplift_ci_low,full": ("uplift", "uplift_ci_low"),
         "uplift_ci_high,full": ("uplift", "uplift_ci_high"), "uplift_p_value,full": ("uplift", "p_value")}


def _from_flat(d: dict) -> tuple[dict, dict[str, str]]:
    """results.json-shaped metrics from an entry's flat `metrics`, and the pointer of each number in the entry."""
    task, metrics, where = str(d["task"]), {"conditions": {}}, {}
    for key, path in _FLAT.items():
        if d["metrics"].get(key) is None:
            continue
        node = metrics
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = d["metrics"][key]
        where[pointer("metrics", task, *path)] = pointer("metrics", key)
    for cond in metrics["conditions"].values():
        cond["n_problems"] = d.get("n_problems")
    return {"metrics": {task: metrics}}, where


BASELINE_KEY = "baseline:"  # the key prefix of a system read from a recorded entry


def _is_baseline(s: System) -> bool:
    return s.key.startswith(BASELINE_KEY)


def _baseline_system(entry: BaselineEntry, root: Path) -> System:
    d = entry.data
    run_dir = Path(d["run_dir"]) if d.get("run_dir") else None
    if run_dir is not None and not run_dir.is_absolute():
        # Relative to the project (the baselines folder's parent), the baselines folder, or the entry file.
        run_dir = next((base / run_dir for base in (root.parent, root, entry.file.parent)
                        if (base / run_dir / "results.json").exists()), run_dir)
    pointers: dict[str, str] = {}
    if run_dir is not None and (run_dir / "results.json").exists():
        run = load_run(run_dir)
        source, prefix = "", ""
    elif "results" not in d:  # a `tl-eval baselines` entry: flat metrics of one task
        results, pointers = _from_flat(d)
        run = Run(None, {"run_id": d.get("run_id") or d["name"], **results})
        source, prefix = str(entry.file), ""
    else:
        results = d["results"]
        for task, m in results["metrics"].items():
            if not isinstance(m, dict) or not isinstance(m.get("conditions"), dict):
                raise DataError(f"{entry.file}: results.metrics.{task} has no 'conditions'",
                                "copy the run's results.json into 'results'")
        run = Run(None, {"run_id": d.get("run_id") or d["name"], **results})
        source, prefix = str(entry.file), "/results"
    # `tl-eval baselines` entries say `system`: executor-alone, zero-shot, exec-only or tracelift.
    kind = d.get("system")
    condition = NONE if kind == "executor-alone" else FULL
    outcomes = {t: {c: {pid: float(v) for pid, v in per.items()} for c, per in o.items()}
                for t, o in (d.get("outcomes") or {}).items()}
    mode = d.get("training_mode") or {"executor-alone": "—", "zero-shot": "none", "reference-plan": "—",
                                      "self-planner": "none"}.get(kind, kind) or "—"
    ckpt = d.get("checkpoint") or Path((d.get("train") or {}).get("checkpoint") or "").name or checkpoint_of(d["planner"])
    return System(key=f"{BASELINE_KEY}{d['name']}", label=str(d["name"]), planner=str(d["planner"]),
                  executor=str(d["executor"]), condition=condition,
                  runs={t: run for t in run.tasks if condition in run.conditions(t)},
                  training_mode=str(mode), checkpoint=str(ckpt), source_file=source, outcome_tables=outcomes,
                  source_prefix=prefix, pointer_map=pointers,
                  planner_system={"reference-plan": "reference plan", "self-planner": "self-planner"}.get(kind)
                  or ((d.get("results") or {}).get("config") or {}).get("planner", {}).get("system"))


def _n(run: Run, task: str) -> int:
    return len(run.task_info(task).get("problem_ids", [])) or int(run.metrics(task)["conditions"][FULL]["n_problems"])


def merge_runs(runs: list[Run]) -> list[System]:
    """One system per planner, executor and sampling; per task the run that scored the most problems."""
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        sampling = tuple(str(r.settings.get(k)) for k in ("n_samples", "temperature", "top_p", "seed"))
        groups.setdefault((r.planner_fingerprint, r.executor_fingerprint, sampling), []).append(r)
    systems = []
    for members in groups.values():
        best: dict[str, Run] = {}
        for r in members:
            for t in r.tasks:
                if FULL in r.conditions(t) and (t not in best or (_n(r, t), r.config.get("created", ""))
                                                 > (_n(best[t], t), best[t].config.get("created", ""))):
                    best[t] = r
        if not best:  # `--planner none` runs: they are executors alone, shown by executor_alone_systems
            continue
        s = pair_system(members[0])
        s.runs = best
        s.key = "pair:" + "+".join(sorted({r.run_id for r in best.values()}))
        systems.append(s)
    return systems


def collect(run_roots: list[str | Path], baselines: str | Path | None,
            skipped: list[Skipped] | None = None) -> tuple[list[System], list[Run]]:
    """Systems from run directories (or folders of them) and baseline entries, plus the executors alone.

    Unreadable run directories are left out and appended to `skipped` with the reason.
    """
    runs, bad = load_runs_lenient(list(run_roots))
    if run_roots and not runs:
        # Runs were asked for and none could be read: recorded baselines alone are not what was asked for.
        raise DataError("no run to show: every run directory given was skipped ("
                        + "; ".join(f"{s.path}: {s.reason}" for s in bad) + ")",
                        "pass --runs with run directories that hold a complete results.json")
    if skipped is not None:
        skipped.extend(bad)
    entries = load_baselines(baselines) if baselines else []
    base = [_baseline_system(e, Path(baselines)) for e in entries]
    base_runs = [r for s in base for r in dict.fromkeys(s.runs.values()) if r.path is not None]
    all_runs = list(dict.fromkeys(runs + base_runs))
    linked = {r.path.resolve() for r in base_runs}
    # A run that a baseline entry points at shows once, under the entry's name.
    systems = merge_runs([r for r in runs if r.path.resolve() not in linked]) + base
    # An executor alone shows once per task: a recorded executor-alone entry of the same executor and problems
    # takes the place of the one derived from the runs' `none` condition.
    def measured(t: str, r: Run) -> tuple:
        return t, r.executor_fingerprint, r.task_info(t).get("problems_fingerprint")

    covered = {measured(t, r) for s in base if s.executor_alone for t, r in s.runs.items()}
    for s in executor_alone_systems(all_runs):
        s.runs = {t: r for t, r in s.runs.items() if measured(t, r) not in covered}
        if s.runs:
            systems.append(s)
    _unique(systems)
    return systems, all_runs


def _unique(systems: list[System]) -> None:
    counts = Counter(s.label for s in systems)
    for s in systems:
        if counts[s.label] > 1:
            s.label = f"{s.label} [{s.key.rsplit('__', 1)[-1][:10]}]"


def _fingerprint(s: System, task: str, present: list[System]) -> str:
    """The task's problems fingerprint; for a recorded entry without one, that of a run with the same problem
    ids as the entry's outcome table."""
    run = s.runs[task]
    fp = run.task_info(task).get("problems_fingerprint")
    if fp:
        return fp
    ids = set(s.outcomes(task) or ())
    for other in present:
        info = other.runs[task].task_info(task)
        if ids and info.get("problems_fingerprint") and set(info.get("problem_ids", ())) == ids:
            return info["problems_fingerprint"]
    return f"unknown:{s.key}"


def rank_task(task: str, systems: list[System], issues: list[Issue], alpha: float, n_resamples: int,
              seed: int) -> dict[str, RankedRow]:
    """Ranks within the largest group of systems scored on the same problems (on a tie, the group holding
    recorded baselines, then the one with more problems); others are unranked."""
    present = [s for s in systems if task in s.runs]
    fps = {s.key: _fingerprint(s, task, present) for s in present}
    groups = Counter(fps.values())
    if not groups:
        return {}

    def weight(fp: str) -> tuple:
        members = [s for s in present if fps[s.key] == fp]
        return (groups[fp], any(_is_baseline(s) for s in members),
                max(s.n_problems(task) for s in members))

    main = max(groups, key=weight)
    ranked = shared_ranks(task, [s for s in present if fps[s.key] == main], issues, alpha, n_resamples, seed)
    out = {r.system.key: r for r in ranked}
    for s in present:
        if s.key not in out:
            out[s.key] = RankedRow(s, s.pass1(task).value, None, False, None,
                                   f"unranked: not scored on the ranked group's problems ({s.n_problems(task)} "
                                   "problems, or none recorded)")
    return out


def build(systems: list[System], runs: list[Run], *, alpha: float = 0.05, n_resamples: int = 2000,
          seed: int = 0) -> dict:
    """The content of leaderboard.json: every number as {value, ci_low, ci_high, source, text}."""
    issues = all_issues(runs)
    tasks = list(dict.fromkeys(t for s in systems for t in s.runs))
    ids: dict[str, str] = {}
    for s in systems:
        base = slug(("exec-" if s.executor_alone else "") + s.label.replace("→", "to"))
        ids[s.key] = base if base not in ids.values() else f"{base}-{len(ids)}"
    ranks = {t: rank_task(t, systems, issues, alpha, n_resamples, seed) for t in tasks}
    rooms = {t: headroom(t, systems, n_resamples, seed) for t in tasks}
    rows = []
    for s in systems:
        entry = {"id": ids[s.key], "name": s.label, "kind": "executor-alone" if s.executor_alone else "pair",
                 "origin": "baseline" if _is_baseline(s) else "run",
                 "planner": s.planner, "executor": s.executor, "training_mode": s.training_mode,
                 "checkpoint": s.checkpoint, "page": None, "tasks": {}}
        for t in s.runs:
            run, r = s.runs[t], ranks[t].get(s.key)
            entry["tasks"][t] = {
                "run_id": run.run_id, "run_dir": str(run.path) if run.path else None,
                "has_samples": s.has_samples(t), "n_problems": s.n_problems(t),
                "problems_fingerprint": run.task_info(t).get("problems_fingerprint"),
                "rank": r.rank if r else None, "rank_shared": bool(r and r.tied_with_leader),
                "p_vs_rank_leader": r.p_vs_leader if r else None, "rank_note": r.note if r else "",
                "pass@1": cell(s.pass1(t)).to_dict() | s.pass1(t).to_dict(),
                "exec_pass@1": cell(s.exec_pass1(t)).to_dict() | s.exec_pass1(t).to_dict()
                if not s.executor_alone else None,
                "uplift": cell(s.uplift(t), "pp").to_dict() | s.uplift(t).to_dict(),
                "uplift_p": cell(s.uplift_p(t), "p").to_dict(),
                "uplift_masked": cell(s.uplift(t, "uplift_masked"), "pp").to_dict() | s.uplift(t, "uplift_masked").to_dict(),
                "uplift_masked_p": cell(s.uplift_p(t, "uplift_masked"), "p").to_dict(),
                "faithfulness": {n: cell(s.faithfulness(t, n), k).to_dict() | s.faithfulness(t, n).to_dict()
                                 for n, _, k in FAITH},
                "cost": {n: cell(s.cost(t, n), k).to_dict() | s.cost(t, n).to_dict() for n, _, k in COST},
                "headroom": cell(rooms[t].shares.get(s.key, MISSING)).to_dict() | rooms[t].shares.get(s.key, MISSING).to_dict(),
            }
        if any(v["has_samples"] for v in entry["tasks"].values()):
            entry["page"] = f"systems/{entry['id']}.html"
        rows.append(entry)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "tasks": tasks, "alpha": alpha,
            "headroom": {t: rooms[t].to_dict() for t in tasks},
            "rank_rule": RANK_RULE.format(alpha=alpha), "systems": rows, "issues": [i.to_dict() for i in issues],
            "columns": {"faithfulness": [[n, h] for n, h, _ in FAITH], "cost": [[n, h] for n, h, _ in COST]}}


def _samples_view(s: System, task: str) -> list[dict]:
    """Samples grouped by (problem, sample index), conditions in the run's order; executor alone: `none` only."""
    groups: dict[tuple[str, int], dict] = {}
    for r in s.runs[task].samples(task):
        if s.executor_alone and r.condition != NONE:
            continue
        g = groups.setdefault(r.key, {
            "problem_id": r.problem_id, "sample_index": r.sample_index,
            "trace": None if s.executor_alone else r.trace,
            "planner_output": None if s.executor_alone else r.planner_output,
            "tag_compliant": r.tag_compliant, "leakage": r.leakage, "conditions": []})
        row = r.to_json()
        g["conditions"].append({k: row[k] for k in SAMPLE_FIELDS})
    return list(groups.values())


def table_rows(board: dict) -> list[tuple[dict, str]]:
    """(entry, task) pairs by task, rank (shared after the group's leader), then pass@1."""
    def key(et):
        e, t = et
        c = e["tasks"][t]
        return (board["tasks"].index(t), c["rank"] is None, c["rank"] or 0, c["rank_shared"],
                -(c["pass@1"]["value"] or 0), e["name"])
    return sorted(((e, t) for e in board["systems"] for t in e["tasks"]), key=key)


def write_site(board: dict, systems: list[System], out: str | Path) -> Path:
    """index.html, systems/<id>.html and leaderboard.json; every page opens from disk."""
    out = Path(out)
    (out / "systems").mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.json").write_text(json.dumps(board, indent=1, ensure_ascii=False) + "\n")
    (out / "index.html").write_text(render("leaderboard.html.jinja", board=board, rows=table_rows(board)))
    for s, entry in zip(systems, board["systems"], strict=True):  # build() keeps the order of `systems`
        if entry["page"] is None:
            continue
        samples = {t: _samples_view(s, t) for t in s.runs if s.has_samples(t)}
        (out / entry["page"]).write_text(render("system.html.jinja", board=board, entry=entry, samples=samples))
    return out / "index.html"


def build_leaderboard(run_roots: list[str | Path], out: str | Path | None, baselines: str | Path | None = None,
                      *, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Collect, rank, and write the site when `out` is given; returns leaderboard.json's content."""
    skipped: list[Skipped] = []
    systems, runs = collect(run_roots, baselines, skipped)
    if not systems:
        raise DataError("no systems to show", "pass --runs DIR (run directories) or --baselines DIR with entries")
    board = build(systems, runs, alpha=alpha, n_resamples=n_resamples, seed=seed)
    board["skipped"] = [s.to_dict() for s in skipped]
    if out is not None:
        write_site(board, systems, out)
    return board


def terminal_table(board: dict, task: str | None = None):
    """Per task, the site's cells as two rich Tables (a terminal is narrower than the page): the ranking with
    pass@1 and uplifts, then the faithfulness, trace and cost columns of the same rows."""
    from rich.table import Table

    tables = []
    for t in [task] if task else board["tasks"]:
        if t not in board["tasks"]:
            raise DataError(f"no system has results for task {t!r}", f"pick one of: {', '.join(board['tasks'])}")
        room = board["headroom"][t]
        ranking = Table(title=f"tl-eval leaderboard · {t}", caption=room["note"])
        for col in ("rank", "system", "training", "n", "pass@1 [CI]", "exec pass@1", "uplift pp [CI]", "p",
                    "uplift_masked pp [CI]", "p ", "headroom [CI]"):
            ranking.add_column(col, justify="left" if col in ("system", "training") else "right")
        detail = Table(title=f"{t} · faithfulness, traces and cost")
        for col in ("rank", "system", *(h for _, h, _ in FAITH), *(h for _, h, _ in COST)):
            detail.add_column(col, justify="left" if col == "system" else "right")
        for e, c in ((e, e["tasks"][t]) for e, tt in table_rows(board) if tt == t):
            f = c["faithfulness"]
            rank = "—" if c["rank"] is None else f"{c['rank']}{'=' if c['rank_shared'] else ''}"
            ranking.add_row(rank, e["name"], e["training_mode"], str(c["n_problems"]),
                            f"{c['pass@1']['text']} {c['pass@1']['ci']}".strip(),
                            c["exec_pass@1"]["text"] if c["exec_pass@1"] else "—",
                            f"{c['uplift']['text']} {c['uplift']['ci']}".strip(), c["uplift_p"]["text"],
                            f"{c['uplift_masked']['text']} {c['uplift_masked']['ci']}".strip(),
                            c["uplift_masked_p"]["text"], f"{c['headroom']['text']} {c['headroom']['ci']}".strip())
            detail.add_row(rank, e["name"], *(f[n]["text"] for n, _, _ in FAITH),
                           *(c["cost"][n]["text"] for n, _, _ in COST))
        tables += [ranking, detail]
    return tables
