"""Custom tasks from a YAML spec: loading, prompts, errors, and math grading end to end."""

import json
from pathlib import Path

import pytest

from tl_eval.harness.errors import ConfigError, DataError
from tl_eval.harness.task import get_task
from tests.test_tasks_jobs import run_here

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


def write_spec(tmp_path, spec: str, rows: list | str, data="rows.jsonl") -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / data).write_text(text)
    return str(path)


def test_custom_math_task_loads_with_mapped_fields():
    task = get_task(str(FIXTURES / "custom_math.yaml"))
    problems = task.load(None)
    assert task.name == "arith" and task.task_type == "math"
    assert [p.problem_id for p in problems] == ["arith/a1", "arith/a2", "arith/a3"]
    assert problems[0].prompt == "What is 17 + 25?" and problems[0].answer == "42"
    assert task.source(None) == str((FIXTURES / "arith.jsonl").resolve())
    assert "What is 17 + 25?" in task.executor_messages(problems[0], None)[-1]["content"]


def test_custom_math_task_end_to_end():
    task = get_task(str(FIXTURES / "custom_math.yaml"))
    try:
        problems = task.load(None)
        outputs = [task.reference_artifact(p) for p in problems]
        outputs += ["17 + 25 = 43, so the answer is \\boxed{43}.", "I do not know."]
        problems += [problems[0], problems[0]]
        artifacts = [task.extract(p, o) for p, o in zip(problems, outputs)]
        assert artifacts[:3] == ["42", "\\frac{3}{2}", "48"] and artifacts[4] is None
        verdicts = task.verify(problems, artifacts, outputs)
        assert [v.status for v in verdicts] == ["pass", "pass", "pass", "fail", "no_answer"]
        assert verdicts[3].details["gold"] == "42"
        # An equivalent form of the answer passes through the symbolic comparison.
        verdicts = task.verify([problems[1]], ["1.5"], ["so \\boxed{1.5}"])
        assert verdicts[0].status == "pass"
    finally:
        task.close()


def test_custom_code_task_loads_and_infers_the_entry_point():
    task = get_task(str(FIXTURES / "custom_code.yaml"))
    problems = task.load(None)
    assert task.name == "strings" and task.task_type == "code"
    assert [p.problem_id for p in problems] == ["strings/rev", "strings/cap"]
    assert [p.entry_point for p in problems] == ["reverse_words", "shout"]
    job = task.build_job(problems[0], problems[0].reference)
    assert [t.code for t in job.tests] == ["assert reverse_words('a b c') == 'c b a'", "assert reverse_words('one') == 'one'"]
    assert run_here(job) == "pass"
    assert run_here(task.build_job(problems[0], "def reverse_words(s):\n    return s\n")) == "fail"
    text = task.executor_messages(problems[1], "upper-case, then add '!'")[-1]["content"]
    assert "returns s upper-cased" in text and "`shout`" in text and "Provided reasoning" in text


def test_row_index_is_the_id_when_rows_have_none(tmp_path):
    spec = write_spec(tmp_path, "name: t\ntype: math\ndata: rows.jsonl\n",
                      [{"prompt": "1+1?", "answer": "2"}, {"prompt": "2+2?", "answer": "4"}])
    assert [p.problem_id for p in get_task(spec).load(None)] == ["t/0", "t/1"]


@pytest.mark.parametrize("spec,match", [
    ("name: t\ntype: math\ndata: rows.jsonl\ncolour: red\n", "unknown key"),
    ("name: t\ntype: math\ndata: rows.jsonl\nfields:\n  tests: x\n", "unknown field.*tests"),
    ("name: t\ntype: poetry\ndata: rows.jsonl\n", "not code or math"),
    ("type: math\ndata: rows.jsonl\n", "missing 'name'"),
    ("name: t\ntype: math\ndata: [unclosed\n", "not valid YAML"),
])
def test_bad_specs_are_config_errors(tmp_path, spec, match):
    path = write_spec(tmp_path, spec, [{"prompt": "1+1?", "answer": "2"}])
    with pytest.raises(ConfigError, match=match):
        get_task(path)


def test_spec_field_missing_from_the_data(tmp_path):
    spec = write_spec(tmp_path, "name: t\ntype: math\ndata: rows.jsonl\nfields:\n  answer: gold\n",
                      [{"prompt": "1+1?", "answer": "2"}])
    with pytest.raises(DataError, match=r"rows.jsonl row 1: no field 'gold'"):
        get_task(spec).load(None)


def test_missing_and_malformed_data(tmp_path):
    spec = write_spec(tmp_path, "name: t\ntype: code\ndata: other.jsonl\n", [])
    with pytest.raises(DataError, match="other.jsonl is missing"):
        get_task(spec).load(None)
    good = json.dumps({"prompt": "p", "tests": ["assert f() == 1"], "entry_point": "f"})
    spec = write_spec(tmp_path, "name: t\ntype: code\ndata: rows.jsonl\n", f"{good}\n\n{good}x\n")
    with pytest.raises(DataError, match=rf"{tmp_path / 'rows.jsonl'}:3: malformed JSON"):
        get_task(spec).load(None)


def test_code_tests_must_be_assert_strings(tmp_path):
    spec = write_spec(tmp_path, "name: t\ntype: code\ndata: rows.jsonl\n", [{"prompt": "p", "tests": [1, 2]}])
    with pytest.raises(DataError, match="list of assert strings"):
        get_task(spec).load(None)


def test_custom_without_a_spec_and_missing_spec(tmp_path):
    from tl_eval.tasks.custom import custom_task

    with pytest.raises(ConfigError, match="needs a spec"):
        custom_task()
    with pytest.raises(ConfigError, match="does not exist"):
        get_task(str(tmp_path / "absent.yaml"))
