"""`tl-eval leaderboard`: rows from runs and baseline entries, numbers equal their files, shared ranks, pages."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tl_eval.harness.errors import DataError
from tests.run_files import sample_rows
from tl_eval.reports.cli import leaderboard as leaderboard_cmd
from tl_eval.reports.leaderboard import build_leaderboard, load_baselines
from tl_eval.reports.load import load_run
from tl_eval.reports.systems import resolve
from tests.test_reports_helpers import (  # noqa: F401  (scripted_runs is a fixture)
    check_cell_against_file, number_cells, scripted_runs)


def make_baselines(folder, scripted_runs):
    """A recorded entry without its run directory (with per-problem outcomes), and one that points at a run."""
    folder.mkdir(parents=True, exist_ok=True)
    good = json.loads((scripted_runs["good"] / "results.json").read_text())
    outcomes = {t: {"full": {r["problem_id"]: float(r["passed"]) for r in sample_rows(scripted_runs["good"], t)
                             if r["condition"] == "full"}} for t in ("gsm8k", "math500")}
    (folder / "recorded-good.json").write_text(json.dumps({
        "name": "recorded good planner", "planner": "scripted:rep-plan-good", "executor": "scripted:rep-exec",
        "training_mode": "exec-only", "checkpoint": "ckpt-100", "run_id": "recorded",
        "results": {"metrics": good["metrics"], "n-samples": good["n-samples"]}, "outcomes": outcomes}))
    (folder / "other.json").write_text(json.dumps({
        "name": "other executor baseline", "planner": "scripted:rep-plan-good", "executor": "scripted:rep-exec-b",
        "training_mode": "none", "checkpoint": "—", "run_id": "x", "run_dir": str(scripted_runs["other"]),
        "results": {"metrics": {}}}))
    (folder / "recipe.json").write_text(json.dumps({"recipe": "not an entry"}))
    return folder


@pytest.fixture(scope="module")
def site(scripted_runs, tmp_path_factory):
    root = scripted_runs["good"].parent  # good, weak, other and small/ (weak on 8 problems)
    baselines = make_baselines(tmp_path_factory.mktemp("baselines"), scripted_runs)
    out = tmp_path_factory.mktemp("site")
    board = build_leaderboard([root], out, baselines, n_resamples=500)
    return out, board


def test_every_number_equals_its_file(site):
    out, board = site
    n = 0
    for e in board["systems"]:
        for t, c in e["tasks"].items():
            cells = [c["pass@1"], c["uplift"], *c["faithfulness"].values(), *c["cost"].values()]
            cells += [c["exec_pass@1"]] if c["exec_pass@1"] else []
            for v in cells:
                if v["value"] is None:
                    continue
                file, _, ptr = v["source"].partition("#")
                assert v["value"] == pytest.approx(resolve(json.loads(open(file).read()), ptr) / v["divisor"])
                n += 1
    assert n > 100
    html_cells = number_cells((out / "index.html").read_text())
    assert len(html_cells) > 100
    for c in html_cells:
        check_cell_against_file(c)
    recorded = next(e for e in board["systems"] if e["name"] == "recorded good planner")
    assert recorded["tasks"]["gsm8k"]["pass@1"]["source"].endswith("recorded-good.json#/results/metrics/gsm8k/"
                                                                    "conditions/full/pass@k/1")


def test_tables_split_the_same_rows(site):
    """The page's three tables (headline, faithfulness, cost and identity) list the same rows in the same order,
    and the headline one holds pass@1, uplift and uplift_masked, so they are on screen without the others."""
    out, _ = site
    html = (out / "index.html").read_text()
    tables = re.findall(r'<table class="data board" id="([\w-]+)">(.*?)</table>', html, re.S)
    assert [t for t, _ in tables] == ["leaderboard", "leaderboard-faithfulness", "leaderboard-cost"]
    keys = [re.findall(r'<tr data-task="([^"]+)" data-system="([^"]+)"', body) for _, body in tables]
    assert len(keys[0]) > 5 and keys[0] == keys[1] == keys[2]
    head = re.search(r"<thead>(.*?)</thead>", tables[0][1], re.S).group(1)
    assert all(h in head for h in ("pass@1", "uplift pp", "uplift_masked pp"))
    assert "corruption sensitivity" not in head and "planner" not in head


def test_rows_runs_baselines_and_executors_alone(site, scripted_runs):
    _, board = site
    names = [e["name"] for e in board["systems"]]
    assert len(names) == len(set(names))
    weak = load_run(scripted_runs["weak"])
    # weak and small are the same system: one row, gsm8k from the run with more problems.
    weak_rows = [e for e in board["systems"] if e["planner"] == "scripted:rep-plan-weak"]
    assert len(weak_rows) == 1 and weak_rows[0]["tasks"]["gsm8k"]["run_id"] == weak.run_id
    assert weak_rows[0]["tasks"]["gsm8k"]["n_problems"] == 20
    alone = sorted(e["executor"] for e in board["systems"] if e["kind"] == "executor-alone")
    assert alone == ["scripted:rep-exec", "scripted:rep-exec-b"]
    recorded = next(e for e in board["systems"] if e["name"] == "recorded good planner")
    assert recorded["page"] is None and recorded["training_mode"] == "exec-only" and recorded["origin"] == "baseline"
    linked = next(e for e in board["systems"] if e["name"] == "other executor baseline")
    assert linked["page"] and linked["tasks"]["gsm8k"]["run_dir"] == str(scripted_runs["other"])
    # The run a baseline points at shows once, under the entry's name.
    assert sum(e["executor"] == "scripted:rep-exec-b" and e["kind"] == "pair" for e in board["systems"]) == 1


def test_shared_ranks_follow_the_rule(site):
    _, board = site
    for task in board["tasks"]:
        rows = sorted((e["tasks"][task] for e in board["systems"] if task in e["tasks"]
                       and e["tasks"][task]["rank"] is not None), key=lambda c: (c["rank"], c["rank_shared"], -c["pass@1"]["value"]))
        assert rows[0]["rank"] == 1
        values = [c["pass@1"]["value"] for c in rows]
        assert values == sorted(values, reverse=True)
        for pos, c in enumerate(rows, 1):
            if c["rank_shared"]:
                assert c["p_vs_rank_leader"] >= board["alpha"] and c["rank"] < pos
            else:
                assert c["rank"] == pos
    gsm = {e["name"]: e["tasks"]["gsm8k"] for e in board["systems"] if "gsm8k" in e["tasks"]}
    # The good planner and its recorded copy are identical: they must share a rank.
    good = next(n for n in gsm if n.startswith("scripted:rep-plan-good") and "rep-exec-b" not in n)
    assert gsm[good]["rank"] == gsm["recorded good planner"]["rank"]


def test_system_pages_list_every_sample(site, scripted_runs):
    out, board = site
    good = next(e for e in board["systems"] if e["page"] and e["tasks"].get("gsm8k", {}).get("run_dir")
                == str(scripted_runs["good"]))
    html = (out / good["page"]).read_text()
    rows = sample_rows(scripted_runs["good"], "gsm8k")
    assert html.count('<details class="sample" id="gsm8k--') == len({(r["problem_id"], r["sample_index"])
                                                                      for r in rows})
    assert html.count('class="cond" data-condition="corrupted"') >= 20
    failing = next(r for r in rows if r["status"] != "pass")
    assert f"{failing['condition']}: {failing['status']}" in html
    assert 'id="search"' in html and "../index.html" in html


def test_terminal_table_without_out(scripted_runs):
    result = CliRunner().invoke(leaderboard_cmd, ["--runs", str(scripted_runs["good"]), "--runs",
                                                  str(scripted_runs["weak"]), "--task", "gsm8k",
                                                  "--n-resamples", "200"])
    assert result.exit_code == 0, result.output
    run = load_run(scripted_runs["good"])
    assert "scripted:rep-plan-good" in result.output and "rep-exec (executor alone)" in result.output
    acc = run.results["metrics"]["gsm8k"]["faithfulness"]["acc"]["full"]
    assert f"{100 * acc['value']:.1f} [{100 * acc['ci_low']:.1f}, {100 * acc['ci_high']:.1f}]" in result.output
    assert re.search(r"shares the rank", result.output)
    # The headroom column, and the one line that says why it is empty here.
    assert "headroom [CI]" in result.output and "gsm8k: no reference-plan row, so no headroom" in result.output


def test_terminal_and_site_show_every_metric_spec(scripted_runs, tmp_path):
    """The terminal tables and the page carry the same columns: every spec of harness.metrics.specs."""
    from rich.console import Console

    from tl_eval.harness.metrics import specs
    from tl_eval.reports.leaderboard import build_leaderboard, terminal_table

    board = build_leaderboard([scripted_runs["good"]], tmp_path / "site", n_resamples=200)
    console = Console(width=400, record=True)
    for table in terminal_table(board, "gsm8k"):
        console.print(table)
    text, html = console.export_text(), (tmp_path / "site" / "index.html").read_text()
    for m in specs.METRICS:
        if m.name == "pair_pass@1":  # the ranking's own column: each row's pass@1 (a pair's, or the executor's alone)
            assert "pass@1 [CI]" in text and "pass@1" in html
            continue
        assert m.label in text, m.name
        assert m.label.replace("[CI]", "") in html.replace("[CI]", ""), m.name
    entry = board["systems"][0]["tasks"]["gsm8k"]
    assert entry["faithfulness"]["tag_compliance"]["value"] is not None


def test_bad_baseline_entry_names_the_file(tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"name": "x", "results": {"metrics": {}}}))
    with pytest.raises(DataError, match=r"broken\.json: baseline entry lacks planner, executor"):
        load_baselines(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match=r"broken\.json is not valid JSON"):
        load_baselines(tmp_path)
    result = CliRunner().invoke(leaderboard_cmd, ["--runs", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "nope does not exist" in result.output


def test_baseline_run_dir_relative_to_the_project(scripted_runs, tmp_path):
    import shutil

    from tl_eval.reports.leaderboard import _baseline_system

    shutil.copytree(scripted_runs["weak"], tmp_path / "runs" / "weak")
    (tmp_path / "baselines").mkdir()
    entry = tmp_path / "baselines" / "weak.json"
    entry.write_text(json.dumps({"name": "weak", "planner": "p", "executor": "e", "run_dir": "runs/weak",
                                 "results": {"metrics": {}}}))
    system = _baseline_system(load_baselines(tmp_path / "baselines")[0], tmp_path / "baselines")
    assert system.runs["gsm8k"].path == tmp_path / "baselines" / ".." / "runs" / "weak" or \
        system.runs["gsm8k"].path.resolve() == (tmp_path / "runs" / "weak").resolve()
    assert system.has_samples("gsm8k") and system.pass1("gsm8k").source.startswith(str(system.runs["gsm8k"].path))


def test_entries_written_by_tl_eval_baselines(tmp_path, scripted_runs):
    """`tl-eval baselines` writes flat metrics of one task; rows show them with sources into the entry file."""
    res = json.loads((scripted_runs["good"] / "results.json").read_text())["results"]["gsm8k"]
    keys = ("pair_pass@1,full", "exec_pass@1,none", "uplift,full", "uplift_ci_low,full", "uplift_ci_high,full")
    entries = tmp_path / "baselines" / "entries"
    entries.mkdir(parents=True)
    (entries / "gsm8k-tracelift.json").write_text(json.dumps({
        "name": "gsm8k-tracelift", "task": "gsm8k", "system": "tracelift", "planner": "hf:runs/train/gsm8k-tracelift",
        "executor": "frozen", "run_id": "gone", "run_dir": str(tmp_path / "gone"), "n_problems": 20,
        "metrics": {k: res[k] for k in keys}, "train": {"checkpoint": "runs/train/gsm8k-tracelift"}}))
    (entries / "gsm8k-executor-alone.json").write_text(json.dumps({
        "name": "gsm8k-executor-alone", "task": "gsm8k", "system": "executor-alone", "planner": "scripted:empty",
        "executor": "frozen", "run_id": "gone2", "n_problems": 20, "metrics": {"exec_pass@1,none": 0.25}}))
    board = build_leaderboard([], tmp_path / "site", tmp_path / "baselines", n_resamples=100)
    rows = {e["name"]: e for e in board["systems"]}
    tl = rows["gsm8k-tracelift"]["tasks"]["gsm8k"]
    assert rows["gsm8k-tracelift"]["training_mode"] == "tracelift"
    assert rows["gsm8k-tracelift"]["checkpoint"] == "gsm8k-tracelift"
    assert tl["pass@1"]["value"] == res["pair_pass@1,full"] and tl["uplift"]["ci_high"] == res["uplift_ci_high,full"]
    assert tl["pass@1"]["source"].endswith("gsm8k-tracelift.json#/metrics/pair_pass@1,full")
    alone = rows["gsm8k-executor-alone"]
    assert alone["kind"] == "executor-alone" and alone["tasks"]["gsm8k"]["pass@1"]["value"] == 0.25
    for c in number_cells((tmp_path / "site" / "index.html").read_text()):
        check_cell_against_file(c)


def test_bad_run_directories_are_skipped_with_a_warning(scripted_runs, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(scripted_runs["good"], runs / "good")
    shutil.copytree(scripted_runs["weak"], runs / "truncated")
    text = (runs / "truncated" / "results.json").read_text()
    (runs / "truncated" / "results.json").write_text(text[: len(text) // 2])  # a disk that filled up
    (runs / "unfinished").mkdir()
    (runs / "unfinished" / "config.json").write_text("{}")  # killed before results.json
    (tmp_path / "empty").mkdir()
    args = ["--task", "gsm8k", "--n-resamples", "200"]
    result = CliRunner().invoke(leaderboard_cmd, ["--runs", str(runs), "--runs", str(tmp_path / "empty"), *args])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 3, result.output
    assert any(str(runs / "truncated") in w and "not valid JSON" in w for w in warnings)
    assert any(str(tmp_path / "empty") in w and "no results.json" in w for w in warnings)
    assert any(str(runs / "unfinished") in w and "did not finish" in w for w in warnings)
    assert "scripted:rep-plan-good" in result.output  # the good run is on the board
    board = build_leaderboard([runs], tmp_path / "site", n_resamples=200)
    assert {s["path"] for s in board["skipped"]} == {str(runs / "truncated"), str(runs / "unfinished")}
    assert json.loads((tmp_path / "site" / "leaderboard.json").read_text())["skipped"] == board["skipped"]

    nothing = CliRunner().invoke(leaderboard_cmd, ["--runs", str(runs / "truncated"), "--runs",
                                                   str(tmp_path / "empty"), *args])
    assert nothing.exit_code == 2
    assert str(runs / "truncated") in nothing.output and str(tmp_path / "empty") in nothing.output


def test_a_recorded_executor_alone_replaces_the_one_derived_from_runs(scripted_runs, tmp_path):
    """The executor alone of a run's `none` condition and a recorded executor-alone entry of the same executor
    and problems are one system: it shows once, under the entry's name."""
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "alone.json").write_text(json.dumps({
        "name": "recorded executor alone", "system": "executor-alone", "planner": "none",
        "executor": "scripted:rep-exec", "run_id": "x", "run_dir": str(scripted_runs["weak"]), "results": {"metrics": {}}}))
    board = build_leaderboard([scripted_runs["good"], scripted_runs["other"]], None, folder, n_resamples=100)
    alone = [e for e in board["systems"] if e["kind"] == "executor-alone"]
    by_executor = sorted((e["executor"], e["name"]) for e in alone)
    assert [x for x, _ in by_executor] == ["scripted:rep-exec", "scripted:rep-exec-b"]
    assert ("scripted:rep-exec", "recorded executor alone") in by_executor


def test_a_tie_of_problem_sets_ranks_the_recorded_baselines(monkeypatch):
    """Two groups of systems of equal size on different problems: the one holding a recorded baseline is ranked,
    even when the other has more problems (a local run on a larger set does not unrank the published entries)."""
    from types import SimpleNamespace

    from tl_eval.reports import leaderboard as L
    from tl_eval.reports.compare import RankedRow

    def system(key, fp, n):
        return SimpleNamespace(key=key, runs={"t": fp}, n_problems=lambda task, n=n: n,
                               pass1=lambda task: SimpleNamespace(value=0.5))

    systems = [system("run:a", "big", 164), system("run:b", "big", 164),
               system("baseline:c", "small", 100), system("run:d", "small", 100)]
    monkeypatch.setattr(L, "_fingerprint", lambda s, task, present: s.runs[task])
    monkeypatch.setattr(L, "shared_ranks", lambda task, ss, *a: [RankedRow(s, 0.5, 1, False, None) for s in ss])
    ranks = L.rank_task("t", systems, [], 0.05, 10, 0)
    assert {k for k, r in ranks.items() if r.rank is not None} == {"baseline:c", "run:d"}
    systems.append(system("run:e", "big", 164))  # a larger group still wins
    ranks = L.rank_task("t", systems, [], 0.05, 10, 0)
    assert {k for k, r in ranks.items() if r.rank is not None} == {"run:a", "run:b", "run:e"}
