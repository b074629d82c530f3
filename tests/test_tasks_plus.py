"""HumanEval+ / MBPP+ through evalplus's loaders, on small fixture files in evalplus's schema."""

import gzip
import math
import shutil
import urllib.error
from pathlib import Path

import pytest

from tl_eval.harness.errors import DataError
from tl_eval.harness.task import get_task
from tl_eval.tasks.evalplus_tasks import literal
from tests.test_tasks_jobs import run_here

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
HE_PLUS = FIXTURES / "HumanEvalPlus-mini.jsonl"
MBPP_PLUS = FIXTURES / "MbppPlus-mini.jsonl"


@pytest.fixture
def he_plus(monkeypatch):
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HE_PLUS))
    task = get_task("humaneval_plus")
    return task, {p.problem_id: p for p in task.load(None)}


@pytest.fixture
def mbpp_plus(monkeypatch):
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(MBPP_PLUS))
    task = get_task("mbpp_plus")
    return task, {p.problem_id: p for p in task.load(None)}


def test_load_through_the_override_variable(he_plus, mbpp_plus):
    task, problems = he_plus
    assert list(problems) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    p = problems["HumanEval/0"]
    assert p.entry_point == "mean_of" and p.metadata["signature_prompt"] is True
    assert p.reference == p.prompt + "    return sum(values) / len(values)\n"
    assert task.source(None) == str(HE_PLUS)
    mtask, mproblems = mbpp_plus
    assert list(mproblems) == ["Mbpp/900", "Mbpp/901"]
    assert mproblems["Mbpp/900"].metadata["signature_prompt"] is False


def test_load_from_data_dir_and_gzip(tmp_path, monkeypatch):
    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)
    (tmp_path / "evalplus").mkdir()
    with open(HE_PLUS, "rb") as src, gzip.open(tmp_path / "evalplus" / "HumanEvalPlus.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    task = get_task("humaneval_plus")
    assert len(task.load(tmp_path)) == 3
    assert task.source(tmp_path).endswith("evalplus/HumanEvalPlus.jsonl.gz")


def test_missing_and_malformed_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(tmp_path / "absent.jsonl"))
    with pytest.raises(DataError, match="absent.jsonl is missing"):
        get_task("mbpp_plus").load(None)
    bad = tmp_path / "MbppPlus.jsonl"
    bad.write_text(MBPP_PLUS.read_text() + "{oops\n")
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(bad))
    with pytest.raises(DataError, match=rf"{bad}:3: malformed JSON"):
        get_task("mbpp_plus").load(None)


def test_incomplete_rows_are_a_data_error(tmp_path, monkeypatch):
    incomplete = tmp_path / "HumanEvalPlus.jsonl"
    incomplete.write_text('{"task_id": "HumanEval/0", "prompt": "def f():\\n"}\n')
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(incomplete))
    with pytest.raises(DataError, match="incomplete"):
        get_task("humaneval_plus").load(None)


def test_offline_without_a_local_copy(monkeypatch):
    import evalplus.data.humaneval as module

    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)

    def offline(url, path):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(module, "make_cache", offline)
    with pytest.raises(DataError) as err:
        get_task("humaneval_plus").load(None)
    assert "HUMANEVAL_OVERRIDE_PATH" in str(err.value) and "go online" in str(err.value)


def test_one_test_per_input_base_then_plus_with_a_cap(he_plus):
    task, problems = he_plus
    p = problems["HumanEval/0"]
    assert [t.name for t in task.tests(p)] == ["base_0", "base_1", "plus_0", "plus_1", "plus_2"]
    task.configure(plus_max_inputs=1)
    assert [t.name for t in task.tests(p)] == ["base_0", "base_1", "plus_0"]


@pytest.mark.parametrize("value", [
    (1, 2), [1, (2, 3)], {1, 2}, set(), frozenset({1}), {"a": (1,)}, float("inf"), -float("inf"), 1 + 2j,
    "text\n'\"", b"\x00", None, [[1.5, 2.0], []],
])
def test_literal_rebuilds_values_exactly(value):
    rebuilt = eval(literal(value))
    assert rebuilt == value and type(rebuilt) is type(value)
    if isinstance(value, list) and value and isinstance(value[-1], tuple):
        assert type(rebuilt[-1]) is tuple
    assert math.isnan(eval(literal(float("nan"))))


def test_reference_passes_and_wrong_answers_fail(he_plus):
    task, problems = he_plus
    for p in problems.values():
        assert run_here(task.build_job(p, p.reference)) == "pass", p.problem_id
    mean = problems["HumanEval/0"]
    assert run_here(task.build_job(mean, "def mean_of(values):\n    return sum(values) // len(values)\n")) == "fail"
    # Floats compare with a tolerance: fsum differs from sum in the last bits.
    fsum = "import math\ndef mean_of(values):\n    return math.fsum(values) / len(values)\n"
    assert run_here(task.build_job(mean, fsum)) == "pass"
    assert run_here(task.build_job(mean, "def mean_of(values):\n    return 1 + sum(values) / len(values)\n")) == "fail"


def test_inputs_are_fresh_for_each_call(he_plus):
    # A candidate that sorts in place changes its argument; the reference must still see the original.
    task, problems = he_plus
    p = problems["HumanEval/1"]
    in_place = "def sorted_copy(items):\n    items.sort()\n    return items\n"
    assert run_here(task.build_job(p, in_place)) == "pass"
    assert run_here(task.build_job(p, "def sorted_copy(items):\n    return items\n")) == "fail"


def test_find_zero_accepts_any_zero(he_plus):
    task, problems = he_plus
    p = problems["HumanEval/2"]
    newton = ("def find_zero(xs):\n    x = 10.0\n    for _ in range(200):\n"
              "        f = sum(c * x ** i for i, c in enumerate(xs))\n"
              "        d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n"
              "        x -= f / d\n    return x\n")
    assert run_here(task.build_job(p, newton)) == "pass"
    assert run_here(task.build_job(p, "def find_zero(xs):\n    return 0.25\n")) == "fail"


def test_mbpp_plus_set_oracle(mbpp_plus):
    # similar_elements is one of evalplus's set-comparison tasks: order does not matter, content does.
    task, problems = mbpp_plus
    p = problems["Mbpp/900"]
    assert task.oracle(p.entry_point) == "set" and task.oracle("check_str") == "not_none"
    reversed_order = "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n"
    assert run_here(task.build_job(p, reversed_order)) == "pass"
    assert run_here(task.build_job(p, "def similar_elements(a, b):\n    return tuple(set(a))\n")) == "fail"


def test_mbpp_plus_exact_oracle(mbpp_plus):
    task, problems = mbpp_plus
    q = problems["Mbpp/901"]
    assert task.oracle(q.entry_point) == ""
    assert run_here(task.build_job(q, q.reference)) == "pass"
    assert run_here(task.build_job(q, "def count_vowels(s):\n    return sum(ch in 'aeiou' for ch in s)\n")) == "fail"
    assert run_here(task.build_job(q, "def count_vowels(s):\n    return float(sum(ch in 'aeiouAEIOU' for ch in s))\n")) == "pass"
