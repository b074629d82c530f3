"""CodeJobs built by the code tasks: run here in-process on trusted reference code, so that the tests,
context and entry-point guard are checked without the sandbox (which has its own tests)."""

import os
import warnings
from pathlib import Path

import pytest

from tl_eval.harness.task import get_task
from tl_eval.harness.verify.code_job import CodeJob

DATA = Path(os.environ.get("TL_EVAL_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


def run_here(job: CodeJob) -> str:
    """pass / fail / error of a job, run unsandboxed (only ever with reference or hand-written code)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # MBPP code has invalid escapes
        return _run(job)


def _run(job: CodeJob) -> str:
    ns: dict = {"__name__": "__main__"}
    exec(job.context, ns)
    try:
        exec(job.solution, ns)
    except Exception:
        return "error"
    for test in job.tests:
        try:
            exec(test.code, dict(ns))
        except AssertionError:
            return "fail"
        except Exception:
            return "error"
    return "pass"


@pytest.fixture(scope="module")
def humaneval():
    return {p.problem_id: p for p in get_task("humaneval").load(None)}


@pytest.fixture(scope="module")
def mbpp():
    return {p.problem_id: p for p in get_task("mbpp").load(DATA)}


def test_humaneval_job_shape(humaneval):
    task = get_task("humaneval")
    p = humaneval["HumanEval/0"]
    job = task.build_job(p, p.reference)
    assert job.entry_point == "has_close_elements" and job.job_id == "HumanEval/0"
    assert [t.name for t in job.tests] == ["check"]
    assert job.tests[0].code.endswith("\ncheck(has_close_elements)")
    assert job.context.startswith(p.reference)  # prompt + canonical solution: helpers the tests call


@pytest.mark.parametrize("pid", ["HumanEval/0", "HumanEval/32", "HumanEval/38", "HumanEval/53", "HumanEval/163"])
def test_humaneval_reference_passes_and_wrong_fails(humaneval, pid):
    task, p = get_task("humaneval"), humaneval[pid]
    assert run_here(task.build_job(p, task.reference_artifact(p))) == "pass"
    wrong = f"def {p.entry_point}(*args):\n    return None\n"
    assert run_here(task.build_job(p, wrong)) in ("fail", "error")  # find_zero's check crashes on None


def test_missing_entry_point_is_not_judged_on_the_reference(humaneval, mbpp):
    # The context holds the reference (helpers for the tests); a candidate that defines nothing must fail.
    for task_name, p in (("humaneval", humaneval["HumanEval/2"]), ("mbpp", mbpp["mbpp/11"])):
        job = get_task(task_name).build_job(p, "x = 1\n")
        assert run_here(job) == "error"


def test_mbpp_job_shape_and_setup_code(mbpp):
    task = get_task("mbpp")
    p = mbpp["mbpp/11"]
    job = task.build_job(p, p.reference)
    assert [t.name for t in job.tests] == ["test_1", "test_2", "test_3"]
    assert [t.code for t in job.tests] == p.metadata["test_list"]
    # Tasks with setup code build objects from classes the reference defines.
    with_setup = next(p for p in mbpp.values() if p.metadata["test_setup_code"])
    job = task.build_job(with_setup, with_setup.reference)
    assert with_setup.metadata["test_setup_code"] in job.context
    assert job.context.index(with_setup.reference) < job.context.index(with_setup.metadata["test_setup_code"])
    assert run_here(job) == "pass"


def test_mbpp_references_pass_here(mbpp):
    task = get_task("mbpp")
    outcomes = {pid: run_here(task.build_job(p, p.reference)) for pid, p in list(mbpp.items())[:60]}
    failing = [pid for pid, status in outcomes.items() if status != "pass"]
    assert len(failing) <= 2, failing  # a few MBPP references are known to be wrong


def test_mbpp_sanitized_references_pass_here():
    task = get_task("mbpp_sanitized")
    problems = task.load(DATA)[:40]
    assert [run_here(task.build_job(p, p.reference)) for p in problems].count("pass") >= 39


def test_no_code_is_compile_error_without_calling_the_verifier(humaneval):
    task = get_task("humaneval")

    class Boom:
        def verify(self, jobs):
            raise AssertionError("the verifier must not be called")

    task._verifier = Boom()
    p = humaneval["HumanEval/0"]
    verdicts = task.verify([p, p], [None, "  "], ["I cannot do this.", ""])
    assert [v.status for v in verdicts] == ["compile_error", "compile_error"]
    assert verdicts[0].details == {"reason": "no code found"}


def test_verify_builds_jobs_with_reference_time_limits(humaneval):
    task = get_task("humaneval")
    seen = {}

    class Recorder:
        def reference_time_limits(self, jobs):
            seen["ref"] = [j.solution for j in jobs]
            return [2.5 for _ in jobs]

        def verify(self, jobs):
            from tl_eval.harness.types import Verdict

            seen["jobs"] = list(jobs)
            return [Verdict("pass") for _ in jobs]

    task._verifier = Recorder()
    a, b = humaneval["HumanEval/0"], humaneval["HumanEval/1"]
    verdicts = task.verify([a, b, a], ["def f(): pass\n", None, a.reference], ["", "", ""])
    assert [v.status for v in verdicts] == ["pass", "compile_error", "pass"]
    assert seen["ref"] == [a.reference]  # measured once per problem, only for problems with a verdict to make
    assert [j.time_limit_s for j in seen["jobs"]] == [2.5, 2.5]
    assert seen["jobs"][0].solution == "def f(): pass\n"
