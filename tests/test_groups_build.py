"""The TraceLift-Groups builder on real GSM8K rationales and MBPP solutions from the shared data folder."""

import json
import random

import pytest
from click.testing import CliRunner

from tl_eval.harness.perturb import ALL_KINDS
from tl_eval.training.cli import build_groups as build_groups_cmd
from tl_eval.training.groups.build import build_groups, negatives_for, BuildReport
from tl_eval.training.groups.labels import NEGATIVE_LABELS, negative_rubric, positive_rubric
from tl_eval.tasks.gsm8k import reference_plan as gsm8k_trace
from tl_eval.training.groups.schema import RUBRIC_DIMS, read_groups
from tl_eval.training.groups.seeds import load_seeds


@pytest.fixture(scope="module")
def gsm_rows(request):
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "gsm8k" / "train.jsonl").exists():
        pytest.skip(f"benchmark data not found in {DATA_DIR}")
    return build_groups("gsm8k", "train", data_dir=DATA_DIR, limit=200, seed=0)


@pytest.fixture(scope="module")
def mbpp_rows():
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "mbpp" / "mbpp.jsonl").exists():
        pytest.skip(f"benchmark data not found in {DATA_DIR}")
    return build_groups("mbpp", "train", data_dir=DATA_DIR, seed=0)


def test_gsm8k_reference_trace_drops_annotations_and_final_line():
    raw = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
    assert gsm8k_trace(raw, "72") == "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 clips."


def test_mbpp_train_split_is_task_ids_601_to_974(data_dir):
    seeds = load_seeds("mbpp", "train", data_dir)
    ids = [int(s.problem_id.split("/")[1]) for s in seeds]
    assert len(seeds) == 374 and min(ids) == 601 and max(ids) == 974
    assert all(s.entry_point and f"{s.entry_point}(" in s.reference_solution for s in seeds)


def test_mbpp_reference_plan_describes_every_train_solution(data_dir):
    for s in load_seeds("mbpp", "train", data_dir):
        plan = s.reference_plan
        assert f"Write {s.entry_point} taking" in plan
        assert len(plan.splitlines()) >= 2
        assert "def " not in plan and f"{s.entry_point}(" not in plan and "return " not in plan  # words, no code


def _check_negative(ref: str, neg, task_type: str) -> None:
    a, b = neg.edit["span"]
    rep = neg.edit["replacement"]
    # Localized: one span of the reference replaced, everything else untouched.
    assert neg.reasoning == ref[:a] + rep + ref[b:]
    assert ref[a:b] == neg.edit["original"]
    assert neg.reasoning != ref
    # Labelled by the rule, with a total below the reference's.
    assert neg.rubric == negative_rubric(neg.negative_kind, task_type)
    assert 0.0 <= neg.rubric["total"] < 1.0
    assert set(RUBRIC_DIMS[task_type]) | {"total"} == set(neg.rubric)


def _check_kind_shape(ref: str, neg) -> None:
    """Each kind edits what its name says, and no more."""
    kind, orig, rep = neg.negative_kind, neg.edit["original"], neg.edit["replacement"]
    if kind in ("number_change", "operator_swap", "condition_flip", "off_by_one"):
        # A token, or for off_by_one at most a range() bound: "range(n)" -> "range(n + 1)".
        assert 0 < len(orig) <= 60 and len(rep) <= 64 and len(orig) + len(rep) < len(ref), (kind, orig, rep)
    elif kind == "step_swap":
        assert sorted(neg.reasoning) == sorted(ref)  # the same characters, two steps traded places
    elif kind == "step_deletion":
        assert rep == "" and 0 < len(orig) < len(ref)
    else:  # answer_leak, irrelevant_step: insertions
        assert orig == "" and neg.edit["span"][0] == neg.edit["span"][1] and rep.strip()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_on_real_gsm8k_rationales(gsm_rows, kind):
    rows, report = gsm_rows
    negs = [(r, n) for r in rows for n in r.negative_bank if n.negative_kind == kind]
    assert negs, f"{kind} applied to none of 200 GSM8K rationales"
    assert report.per_kind[kind] == len(negs)
    for row, neg in negs:
        ref = row.positive_pool[0].reasoning
        assert ref.strip() and "####" not in ref and "<<" not in ref  # the task's reference plan
        _check_negative(ref, neg, "math")
        _check_kind_shape(ref, neg)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_on_real_mbpp_plans(mbpp_rows, kind):
    rows, report = mbpp_rows
    negs = [(r, n) for r in rows for n in r.negative_bank if n.negative_kind == kind]
    assert negs, f"{kind} applied to no MBPP train plan"
    for row, neg in negs:
        _check_negative(row.positive_pool[0].reasoning, neg, "code")
        _check_kind_shape(row.positive_pool[0].reasoning, neg)


def test_answer_leak_really_contains_the_answer(gsm_rows, mbpp_rows, data_dir):
    seeds = {s.problem_id: s for s in load_seeds("gsm8k", "train", data_dir)[:200]}
    for row in gsm_rows[0]:
        leak = next(n for n in row.negative_bank if n.negative_kind == "answer_leak")
        answer = seeds[row.problem_id].answer
        assert answer in leak.edit["replacement"] and answer in leak.reasoning
    for row in mbpp_rows[0]:
        leak = next(n for n in row.negative_bank if n.negative_kind == "answer_leak")
        assert row.reference_solution.strip() in leak.reasoning  # the full reference program
        assert leak.rubric["non_leakage"] == 0


def test_building_is_seeded(data_dir):
    a, _ = build_groups("gsm8k", data_dir=data_dir, limit=30, seed=0)
    b, _ = build_groups("gsm8k", data_dir=data_dir, limit=30, seed=0)
    c, _ = build_groups("gsm8k", data_dir=data_dir, limit=30, seed=1)
    assert [r.to_json() for r in a] == [r.to_json() for r in b]
    assert [r.to_json() for r in a] != [r.to_json() for r in c]
    # A row does not depend on how many seeds were built around it.
    d, _ = build_groups("gsm8k", data_dir=data_dir, limit=10, seed=0)
    assert [r.to_json() for r in d] == [r.to_json() for r in a[:10]]


def test_label_rule_lowers_a_named_dimension_for_every_kind():
    for tt, rules in NEGATIVE_LABELS.items():
        assert set(rules) == set(ALL_KINDS) | {"wrong_strategy"}
        for kind, lowered in rules.items():
            assert lowered and set(lowered) <= set(RUBRIC_DIMS[tt])
            assert all(0 <= v < 4 for v in lowered.values())
        assert positive_rubric(tt)["total"] == 1.0
    assert negative_rubric("answer_leak", "code")["non_leakage"] == 0


def test_inapplicable_kinds_are_counted_not_faked():
    report = BuildReport()
    from tl_eval.training.groups.seeds import Seed

    seed = Seed("x/1", "gsm8k", "math", "q", "r", "5")
    negs = negatives_for("Just one sentence without numbers", seed, "math", ALL_KINDS, 0, report)
    kinds = {n.negative_kind for n in negs}
    assert "number_change" not in kinds and report.not_applicable["number_change"] == 1
    assert "answer_leak" in kinds


def test_writer_writes_mbpp_plans_and_wrong_strategy(data_dir):
    from tl_eval.harness.models.scripted import register_scripted
    from tl_eval.training.groups.writer import open_writer

    def fake_writer(messages):
        prompt = messages[-1]["content"]
        if "wrong strategy" in prompt:
            return "<reasoning>1. Sort the input.\n2. Return its first element.</reasoning>"
        return "1. Read the input list.\n2. Loop over it and keep the best value.\n3. Return it."

    register_scripted("rm-test-writer", fake_writer)
    rows, report = build_groups("mbpp", data_dir=data_dir, limit=5, seed=0, writer=open_writer("scripted:rm-test-writer"))
    assert len(rows) == 5 and report.per_kind["wrong_strategy"] == 5
    for row in rows:
        assert row.positive_pool[0].reasoning.startswith("1. Read the input list.")
        wrong = [n for n in row.negative_bank if n.negative_kind == "wrong_strategy"]
        assert wrong[0].reasoning == "1. Sort the input.\n2. Return its first element."
        assert wrong[0].rubric == negative_rubric("wrong_strategy", "code")


def test_cli_writes_rows_and_reports_counts(tmp_path, data_dir):
    out = tmp_path / "g.jsonl"
    res = CliRunner().invoke(build_groups_cmd, ["--task", "gsm8k", "--limit", "12", "--out", str(out),
                                                "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert "12 groups" in res.output and "number_change" in res.output
    rows = read_groups(out)
    assert len(rows) == 12 and rows[0].problem_id == "gsm8k/train/0" and rows[0].task_type == "math"
    raw = json.loads(out.read_text().splitlines()[0])
    assert set(raw) >= {"problem_id", "source", "task_type", "problem", "reference_solution", "positive_pool",
                        "negative_bank"}


def test_cli_names_missing_data(tmp_path):
    res = CliRunner().invoke(build_groups_cmd, ["--task", "mbpp", "--out", str(tmp_path / "g.jsonl"),
                                                "--data-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "mbpp.jsonl" in res.output and "--data-dir" in res.output
