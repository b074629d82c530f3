"""`tl-eval report`: numbers equal results.json, paired statistics, comparability, figures, bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tl_eval.harness.errors import DataError
from tl_eval.harness.metrics.paired import mcnemar_exact
from tests.run_files import sample_rows
from tl_eval.reports import fmt
from tl_eval.reports.cli import report as report_cmd
from tl_eval.reports.compare import paired_diff, shared_ranks
from tl_eval.reports.load import Run, load_run
from tl_eval.reports.report import build_report
from tl_eval.reports.systems import System
from tests.test_reports_helpers import (  # noqa: F401  (scripted_runs is a fixture)
    TASKS, check_cell_against_file, md_table_rows, number_cells, scripted_runs)


@pytest.fixture(scope="module")
def rep(scripted_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report([scripted_runs["good"], scripted_runs["weak"], scripted_runs["other"]], out,
                        n_resamples=2000)


def test_every_number_in_report_html_equals_results_json(rep, scripted_runs):
    cells = number_cells(rep.html.read_text())
    checked = [check_cell_against_file(c) for c in cells]
    # 5 systems (3 pairs, 2 executors alone) × 2 tasks have a pass@1 each; pairs also uplift, faithfulness, cost.
    assert len(checked) > 80
    results = json.loads((scripted_runs["good"] / "results.json").read_text())
    pass_cells = [c for c in cells if c["data-source"].endswith("/metrics/gsm8k/conditions/full/pass@k/1")
                  and str(scripted_runs["good"]) in c["data-source"]]
    assert [float(c["data-value"]) for c in pass_cells] == [results["results"]["gsm8k"]["pair_pass@1,full"]]


def test_report_md_rows_equal_results_json(rep, scripted_runs):
    md = rep.markdown.read_text()
    for task in TASKS:
        rows = {r[0]: r for r in md_table_rows(md, "| system | n | pass@1", after=f"## {task}")}
        for key in ("good", "weak", "other"):
            run = load_run(scripted_runs[key])
            res = run.results["results"][task]
            label = next(s.label for s in rep.systems if s.runs.get(task) is run or
                         (s.key == f"pair:{run.run_id}"))
            row = rows[label.replace("|", "\\|")]
            assert row[1] == str(run.results["n-samples"][task]["effective"])
            assert row[2] == fmt.pct(res["pair_pass@1,full"])
            acc = run.results["metrics"][task]["faithfulness"]["acc"]["full"]
            assert row[3] == f"[{fmt.pct(acc['ci_low'])}, {fmt.pct(acc['ci_high'])}]"
            assert row[4] == fmt.pct(res["exec_pass@1,none"])
            assert row[5] == fmt.pp(res["uplift,full"])
            assert row[6] == f"[{fmt.pp(res['uplift_ci_low,full'])}, {fmt.pp(res['uplift_ci_high,full'])}]"
            assert row[7] == fmt.pvalue(res["uplift_p_value,full"])


def test_paired_comparisons_recomputed_from_samples(rep, scripted_runs):
    good, weak = load_run(scripted_runs["good"]), load_run(scripted_runs["weak"])
    section = next(s for s in rep.sections if s.task == "gsm8k")
    diff = next(d for d in section.comparisons if d.metric == "pass@1" and good.label in d.a and weak.label in d.b)
    a = {r["problem_id"]: r["passed"] for r in sample_rows(good.path, "gsm8k") if r["condition"] == "full"}
    b = {r["problem_id"]: r["passed"] for r in sample_rows(weak.path, "gsm8k") if r["condition"] == "full"}
    ids = sorted(a)
    assert diff.n == len(ids) == 20
    assert diff.mean_a == pytest.approx(np.mean([a[i] for i in ids]))
    assert diff.p_value == pytest.approx(mcnemar_exact(np.array([a[i] for i in ids]), np.array([b[i] for i in ids])))
    assert diff.test == "mcnemar_exact" and diff.ci_low <= diff.diff <= diff.ci_high
    md = rep.markdown.read_text()
    # The "better" sentence appears exactly for the significant comparisons.
    for s in rep.sections:
        for d in s.comparisons:
            claim = "is better than"
            assert (claim in d.sentence()) == (d.p_value < 0.05)
            assert d.sentence() in md
    assert any(d.significant for s in rep.sections for d in s.comparisons)
    assert any(not d.significant for s in rep.sections for d in s.comparisons)


def test_uplift_differences_and_plan_differences_recomputed_from_samples(rep, scripted_runs):
    good, weak = load_run(scripted_runs["good"]), load_run(scripted_runs["weak"])
    section = next(s for s in rep.sections if s.task == "gsm8k")
    pair = [d for d in section.comparisons if good.label in d.a and weak.label in d.b]
    assert [d.metric for d in pair] == ["pass@1", "uplift"]  # no masked condition in these runs

    def uplift(run):
        rows = {(r["condition"], r["problem_id"]): r["passed"] for r in sample_rows(run.path, "gsm8k")}
        return {pid: rows["full", pid] - rows["none", pid] for cond, pid in rows if cond == "full"}

    ua, ub = uplift(good), uplift(weak)
    d = pair[1]
    assert d.mean_a == pytest.approx(np.mean(list(ua.values()))) and d.mean_b == pytest.approx(np.mean(list(ub.values())))
    assert d.diff == pytest.approx(d.mean_a - d.mean_b)
    assert d.a_only == sum(ua[p] > ub[p] for p in ua) and d.b_only == sum(ub[p] > ua[p] for p in ua)
    assert "uplift" in d.sentence()
    plans = next(x for x in section.plan_diffs if good.label in x.a and weak.label in x.b)
    assert (plans.n, plans.differ) == (20, 20)  # the two scripted planners never write the same trace
    assert "Plans that differ on gsm8k" in rep.markdown.read_text()


def test_uplift_differences_take_negative_per_problem_values():
    ids = [f"p{i}" for i in range(30)]
    a = {p: (1.0 if i < 10 else 0.0) for i, p in enumerate(ids)}  # uplift +1 on 10 problems
    b = {p: (-1.0 if i < 12 else 0.0) for i, p in enumerate(ids)}  # the trace hurt on 12
    d = paired_diff("t", "A", a, "B", b, metric="uplift", n_resamples=500)
    assert d.diff == pytest.approx((10 + 12) / 30) and d.ci_low > 0 and d.test == "sign_test" and d.significant


def test_report_files_and_self_contained_html(rep):
    names = {f.name for f in rep.figures}
    assert {"pass_at_1", "uplift_forest", "early_answering", "accuracy_by_condition", "outcome_grid"} <= names
    for f in rep.figures:
        assert f.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.png.stat().st_size > 5000
        assert f.svg.read_text().lstrip().startswith("<?xml") and "<svg" in f.svg.read_text()
    html = rep.html.read_text()
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == len(rep.figures) and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:)?//', html)  # nothing fetched from elsewhere


def test_incomparable_runs_are_refused_or_flagged(scripted_runs, tmp_path):
    rep = build_report([scripted_runs["good"], scripted_runs["small"], scripted_runs["other"]], tmp_path,
                       n_resamples=500, figures_too=False)
    kinds = {(i.kind, i.task) for i in rep.issues}
    assert ("problems", "gsm8k") in kinds  # 20 vs 8 problems
    assert any(k == "executor" for k, _ in kinds)
    gsm = next(s for s in rep.sections if s.task == "gsm8k")
    small_label = load_run(scripted_runs["small"]).label
    assert any(small_label in (r.a, r.b) and "different problems" in r.reason for r in gsm.refusals)
    assert not any(small_label in (d.a, d.b) for d in gsm.comparisons)
    assert "different problems" in rep.markdown.read_text()
    with pytest.raises(DataError, match="not comparable"):
        build_report([scripted_runs["good"], scripted_runs["small"]], tmp_path / "strict", strict=True)


def test_sampling_difference_is_flagged(scripted_runs, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(scripted_runs["weak"], changed)
    res = json.loads((changed / "results.json").read_text())
    res["run_id"] = "changed"
    res["config"]["config"]["temperature"] = 0.7
    (changed / "results.json").write_text(json.dumps(res))
    rep = build_report([scripted_runs["good"], changed], tmp_path / "out", n_resamples=500, figures_too=False)
    sampling = [i for i in rep.issues if i.kind == "sampling"]
    assert sampling and "temperature 0.0 vs 0.7" in sampling[0].detail and not sampling[0].refused
    d = next(d for s in rep.sections for d in s.comparisons if s.task == "gsm8k" and not
             (d.a.endswith("alone") or d.b.endswith("alone")))
    assert "temperature" in d.sentence()  # compared, with the caveat in the sentence


def _write(path, text):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(text)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("corrupt", "is not valid JSON"),
    ("version", "version 99"),
    ("foreign", "lacks metrics, config"),
])
def test_bad_input_names_the_file(case, message, tmp_path, scripted_runs):
    bad = tmp_path / case
    if case == "corrupt":
        _write(bad, '{"schema": "tl-eval/results", "schema_ver')
    elif case == "version":
        _write(bad, json.dumps({"schema": "tl-eval/results", "schema_version": 99}))
    elif case == "foreign":
        _write(bad, json.dumps({"schema": "tl-eval/results", "schema_version": 1, "results": {}}))
    with pytest.raises(DataError, match=message) as err:
        build_report([scripted_runs["good"], bad], tmp_path / "out")
    assert str(bad) in str(err.value)
    result = CliRunner().invoke(report_cmd, [str(scripted_runs["good"]), str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and str(bad) in result.output and "fix:" in result.output


def _table_system(name: str, outcomes: dict[str, float]) -> System:
    results = {"metrics": {"t": {"conditions": {"full": {"pass@k": {"1": float(np.mean(list(outcomes.values())))},
                                                           "n_problems": len(outcomes)}}}}}
    return System(key=name, label=name, planner=name, executor="e", condition="full",
                  runs={"t": Run(None, results)}, outcome_tables={"t": {"full": outcomes}})


def test_shared_ranks_follow_the_group_leader():
    ids = [f"p{i}" for i in range(40)]
    a = _table_system("A", {p: float(i < 36) for i, p in enumerate(ids)})  # 0.90
    b = _table_system("B", {p: float(i < 34) for i, p in enumerate(ids)})  # 0.85, 2 discordant vs A
    c = _table_system("C", {p: float(i < 12) for i, p in enumerate(ids)})  # 0.30, 24 discordant vs A
    d = _table_system("D", {p: float(i < 11) for i, p in enumerate(ids)})  # 0.275, 1 discordant vs C
    rows = shared_ranks("t", [d, c, b, a], issues=[], n_resamples=200)
    assert [(r.system.label, r.rank, r.tied_with_leader) for r in rows] == [
        ("A", 1, False), ("B", 1, True), ("C", 3, False), ("D", 3, True)]
    assert rows[1].p_vs_leader == pytest.approx(mcnemar_exact(np.ones(2), np.zeros(2)))


def test_paired_diff_sentence_only_claims_when_significant():
    ids = [f"p{i}" for i in range(30)]
    strong = paired_diff("t", "A", {p: 1.0 for p in ids}, "B", {p: float(i < 10) for i, p in enumerate(ids)})
    weak = paired_diff("t", "A", {p: float(i < 11) for i, p in enumerate(ids)}, "B",
                       {p: float(i < 10) for i, p in enumerate(ids)})
    assert strong.sentence().startswith("A is better than B by pass@1 on t") and strong.a_only == 20
    assert weak.sentence().startswith("No significant difference") and "better" not in weak.sentence()
    rates = paired_diff("t", "A", {p: 0.5 for p in ids}, "B", {p: 0.0 for p in ids})
    assert rates.test == "sign_test" and rates.significant
    assert paired_diff("t", "A", {"x": 1.0}, "B", {"y": 1.0}) is None


def test_report_warns_when_a_samples_file_is_missing(scripted_runs, tmp_path):
    import shutil

    from tl_eval.reports.cli import report as report_cmd

    shutil.copytree(scripted_runs["weak"], tmp_path / "weak")
    (tmp_path / "weak" / "samples_gsm8k.jsonl").unlink()
    result = CliRunner().invoke(report_cmd, [str(scripted_runs["good"]), str(tmp_path / "weak"), "--out",
                                             str(tmp_path / "rep"), "--no-figures", "--n-resamples", "200"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.output
    assert "samples_gsm8k.jsonl" in warnings[0] and "paired comparisons" in warnings[0]
    assert "drill-down" in warnings[0]
    assert "missing samples" in (tmp_path / "rep" / "report.md").read_text()


def test_templates_and_static_files_load_from_the_installed_package(tmp_path):
    """From another folder, as the `tl-eval` script runs (pytest puts the repository on sys.path; users don't)."""
    code = ("import sys; sys.path = [p for p in sys.path if p not in ('', '.')];"
            "from tl_eval.reports.render import environment, static;"
            "[environment().get_template(t) for t in ('report.md.jinja', 'report.html.jinja')]; static('site.css')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
