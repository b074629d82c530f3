"""Planner and executor prompts, and extraction of programs and answers from realistic model outputs."""

import os
from pathlib import Path

import pytest

from tl_eval.harness.task import get_task
from tl_eval.tasks.code_extract import extract_program

DATA = Path(os.environ.get("TL_EVAL_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
TRACE = "Step 1: split the input.\nStep 2: compare neighbours."


@pytest.fixture(scope="module")
def problems():
    return {
        "humaneval": get_task("humaneval").load(None)[0],
        "mbpp": get_task("mbpp").load(DATA)[0],
        "gsm8k": get_task("gsm8k").load(DATA)[0],
        "math500": get_task("math500").load(DATA)[0],
    }


@pytest.mark.parametrize("name", ["humaneval", "mbpp", "gsm8k", "math500"])
def test_planner_prompt_asks_for_tagged_reasoning_without_the_artifact(problems, name):
    problem = problems[name]
    messages = get_task(name).planner_messages(problem)
    text = messages[-1]["content"]
    assert messages[-1]["role"] == "user"
    assert problem.prompt.strip() in text
    assert "<reasoning>" in text and "</reasoning>" in text
    forbidden = "Do not write any code" if problem.task_type == "code" else "Do not state the final answer"
    assert forbidden in text


@pytest.mark.parametrize("name", ["humaneval", "mbpp", "gsm8k", "math500"])
def test_executor_prompt_holds_the_trace_iff_given(problems, name):
    task, problem = get_task(name), problems[name]
    with_trace = task.executor_messages(problem, TRACE)[-1]["content"]
    alone = task.executor_messages(problem, None)[-1]["content"]
    assert problem.prompt.strip() in with_trace and problem.prompt.strip() in alone
    assert "Provided reasoning:" in with_trace and TRACE in with_trace
    assert "guidance if it is helpful" in with_trace
    assert "Provided reasoning" not in alone and "guidance" not in alone
    # Executor-alone is the same wording minus the reasoning part.
    assert with_trace.replace(f"Provided reasoning:\n{TRACE}\n\n"
                              "Use the provided reasoning as guidance if it is helpful.\n\n", "") == alone
    if problem.task_type == "code":
        assert f"`{problem.entry_point}`" in alone and "```python" in alone
    else:
        assert "\\boxed{}" in alone


def test_humaneval_executor_continues_the_signature(problems):
    text = get_task("humaneval").executor_messages(problems["humaneval"], None)[-1]["content"]
    assert "continuing from the given signature" in text


def test_prompts_are_short(problems):
    # 0.5B models with 2k-4k context: the instructions around the problem stay small.
    for name, problem in problems.items():
        task = get_task(name)
        overhead = len(task.executor_messages(problem, None)[-1]["content"]) - len(problem.prompt)
        assert overhead < 300, name
        assert len(task.planner_messages(problem)[-1]["content"]) - len(problem.prompt) < 300


# --- code extraction ---------------------------------------------------------------------------------

HE_PROMPT = 'from typing import List\n\n\ndef below_zero(ops: List[int]) -> bool:\n    """True if the balance drops below zero."""\n'
FULL_FN = "def below_zero(ops: List[int]) -> bool:\n    total = 0\n    for op in ops:\n        total += op\n        if total < 0:\n            return True\n    return False"


def test_fenced_block_with_prose():
    out = f"Here is the solution:\n\n```python\n{FULL_FN}\n```\n\nThis runs in O(n)."
    code = extract_program(out, "below_zero", HE_PROMPT)
    assert code.startswith("from typing import List\n")  # the prompt's import, so the annotation resolves
    assert FULL_FN in code and "This runs" not in code
    ns = {}
    exec(code, ns)
    assert ns["below_zero"]([1, -2]) is True


def test_last_block_that_defines_the_entry_point_wins():
    out = ("First attempt:\n```python\ndef below_zero(ops):\n    return None\n```\nFixed:\n"
           f"```python\n{FULL_FN}\n```\nUsage:\n```python\nprint(below_zero([1, -2]))\n```")
    code = extract_program(out, "below_zero", None)
    assert FULL_FN in code and "return None" not in code and "print(" not in code


def test_untagged_fence_and_unterminated_fence():
    assert FULL_FN in extract_program(f"```\n{FULL_FN}\n```", "below_zero", None)
    cut = f"```python\n{FULL_FN}\n"  # the model hit max_tokens before closing the fence
    assert FULL_FN in extract_program(cut, "below_zero", None)


def test_non_python_blocks_are_ignored():
    out = f"```bash\npip install x\n```\n```python\n{FULL_FN}\n```"
    assert "pip install" not in extract_program(out, "below_zero", None)


def test_unfenced_code_and_code_after_prose():
    assert extract_program(FULL_FN, "below_zero", None).strip() == FULL_FN
    out = f"Sure! The function is:\n{FULL_FN}\nIt returns True when the balance is negative."
    assert extract_program(out, "below_zero", None).strip() == FULL_FN


def test_completion_style_body_is_joined_to_the_signature():
    body = "    total = 0\n    for op in ops:\n        total += op\n        if total < 0:\n            return True\n    return False"
    for out in (f"```python\n{body}\n```", body):
        code = extract_program(out, "below_zero", HE_PROMPT)
        ns = {}
        exec(code, ns)
        assert ns["below_zero"]([2, -1]) is False and ns["below_zero"]([-1]) is True


def test_function_only_answer_gets_prompt_imports_once():
    code = extract_program(f"```python\n{FULL_FN}\n```", "below_zero", HE_PROMPT)
    assert code.count("from typing import List") == 1
    with_import = f"```python\nfrom typing import List\n{FULL_FN}\n```"
    assert extract_program(with_import, "below_zero", HE_PROMPT).count("from typing import List") == 1


def test_no_code_gives_none():
    assert extract_program("", "f", None) is None
    assert extract_program("I am not sure how to solve this.", "f", None) is None
    assert extract_program("```python\n\n```", "f", None) is None


def test_syntax_error_is_kept_for_the_verifier():
    # A broken block is still the answer: the sandbox reports compile_error, not "no code".
    code = extract_program("```python\ndef f(x)\n    return x\n```", "f", None)
    assert code is not None and "def f(x)" in code


def test_task_extract_uses_the_problem(problems):
    out = f"```python\n{FULL_FN}\n```"
    he = problems["humaneval"]
    code = get_task("humaneval").extract(he, "```python\n    return False\n```")
    assert code.startswith("from typing import List") and f"def {he.entry_point}" in code
    mbpp = problems["mbpp"]
    assert get_task("mbpp").extract(mbpp, out).strip() == FULL_FN  # no signature prompt: no joining


# --- math extraction (delegated to the grader's pipelines) ----------------------------------------------

def test_math_extract_follows_the_pipeline(problems):
    task = get_task("gsm8k")
    p = problems["gsm8k"]
    out = "She sells 9 eggs for $2 each, so 9 * 2 = 18.\nThe final answer is \\boxed{18}."
    assert task.extract(p, out) == "18"
    assert task.extract(p, "so she makes 18 dollars") is None  # strict: no answer marker
    task.configure(math_pipeline="flexible")
    assert task.extract(p, "so she makes 18 dollars") == "18"
