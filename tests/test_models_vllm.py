"""vLLM without vLLM or a GPU must fail early with one clear message naming both fixes."""

from __future__ import annotations

import importlib.util

import pytest

from tl_eval.harness.errors import ConfigError, ModelError
from tl_eval.harness.models import load_generator, preflight


def _has_gpu() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None and _has_gpu(), reason="vLLM and a GPU are present")
def test_vllm_missing_or_no_gpu_is_a_clear_model_error():
    for call in (preflight, load_generator):
        with pytest.raises(ModelError) as info:
            call("vllm:Qwen/Qwen2.5-Coder-0.5B-Instruct?tensor_parallel_size=2")
        message = str(info.value)
        if importlib.util.find_spec("vllm") is None:
            assert "vLLM is not installed (pip install 'tl-eval[gpu]')" in message
        if not _has_gpu():
            assert "no CUDA GPU found" in message
        assert "builtin:" in info.value.fix  # says what to use instead


def test_vllm_options_are_checked_before_anything_loads():
    with pytest.raises(ConfigError, match="did you mean 'tensor_parallel_size'"):
        preflight("vllm:m?tensor_paralel_size=2")
    with pytest.raises(ConfigError, match="is not an integer"):
        preflight("vllm:m?data_parallel_size=two")


class _FakeLLM:
    """Just enough of vllm.LLM to see how the backend submits requests."""

    calls: list[int] = []

    def __init__(self, **kwargs):
        pass

    def chat(self, conversations, sampling_params, use_tqdm=False, **kwargs):
        from types import SimpleNamespace

        _FakeLLM.calls.append(len(conversations))
        return [SimpleNamespace(prompt_token_ids=[1, 2], outputs=[SimpleNamespace(
            text=c[-1]["content"].upper(), finish_reason="stop", token_ids=[3])]) for c in conversations]


@pytest.fixture
def fake_vllm(monkeypatch):
    import sys
    from types import SimpleNamespace

    from tl_eval.harness.models import vllm_backend

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=_FakeLLM, SamplingParams=lambda **kw: kw))
    monkeypatch.setattr(vllm_backend, "preflight_vllm", lambda spec: None)
    _FakeLLM.calls = []
    return vllm_backend


@pytest.mark.parametrize("chunk, calls", [("", [10]), ("?chunk=4", [4, 4, 2])])
def test_vllm_submits_a_stage_at_once_unless_chunked(fake_vllm, chunk, calls):
    from tl_eval.harness.models import parse_spec
    from tl_eval.harness.types import GenerationRequest, SamplingParams

    gen = fake_vllm.VLLMGenerator(parse_spec(f"vllm:some/model{chunk}"))
    requests = [GenerationRequest(({"role": "user", "content": f"q{i}"},), SamplingParams(), 0) for i in range(10)]
    done = []
    outs = gen.generate(requests, on_done=lambda i, g: done.append(i))
    assert _FakeLLM.calls == calls  # vLLM schedules a whole stage itself; chunks only to flush results early
    assert [o.text for o in outs] == [f"Q{i}" for i in range(10)] and sorted(done) == list(range(10))
