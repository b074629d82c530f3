"""`--math-pipeline strict-match` is lm-eval's gsm8k `strict-match` filter, asked for by name: on every completion
of the equivalence suite, tl-eval's extraction equals what lm-eval's installed filter returns (run through
lm-eval's own code), so a user who asks for lm-eval's behaviour gets it, not an approximation."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from tl_eval.harness.verify.math_extract import extract_answer  # noqa: E402

BENCH = Path(__file__).parent / "benchmarks" / "compare_math_graders.py"
SUITE = Path(__file__).parent / "fixtures" / "math" / "equivalence_issue30.jsonl"
EXTRA = ["The answer is 5.\n#### 5", "#### -3", "####7", "#### 1,234.\n#### 9", "#### $12", "Total: 8 #### 8 more",
         "#### 2.50", "no marker 42", "#### 3/4", "x\n####  10\n"]


def _lm_eval_grades():
    spec = importlib.util.spec_from_file_location("compare_math_graders", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lm_eval_grades


def test_strict_match_extracts_what_lm_evals_filter_extracts():
    texts = [json.loads(line)["output"] for line in SUITE.read_text().splitlines() if line.strip()] + EXTRA
    lm = _lm_eval_grades()(texts, ["0"] * len(texts))["lm-strict-match"]
    assert len(texts) > 150
    for text, (_, theirs) in zip(texts, lm):
        ours = extract_answer(text, "strict-match")
        assert (ours if ours is not None else "[invalid]") == theirs, text
