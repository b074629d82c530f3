"""vLLM without vLLM or a GPU must fail early with one clear message naming both fixes."""

from __future__ import annotations

import pytest

from tl_eval.harness.errors import ConfigError, ModelError
from tl_eval.harness.models import load_generator, preflight


@pytest.mark.parametrize("build, gpus, spec, message", [
    (None, 0, "vllm:m", "vLLM is not installed"),
    ("gpu", 0, "vllm:m", "GPU build and no CUDA GPU is visible"),
    ("gpu", 1, "vllm:m?tensor_parallel_size=2", "2 GPUs requested, 1 visible"),
    ("cpu", 0, "vllm:m?data_parallel_size=2", "= 2 on the CPU build"),
])
def test_vllm_that_cannot_run_here_is_a_clear_model_error(monkeypatch, build, gpus, spec, message):
    from tl_eval.harness.models import vllm_backend

    monkeypatch.setattr(vllm_backend, "vllm_build", lambda: build)
    monkeypatch.setattr(vllm_backend, "_gpu_count", lambda: gpus)
    for call in (preflight, load_generator):
        with pytest.raises(ModelError, match=message) as info:
            call(spec)
        assert info.value.fix  # says what to do instead


def test_vllm_device_follows_the_installed_build(monkeypatch):
    from tl_eval.harness.models import vllm_backend

    monkeypatch.setattr(vllm_backend, "vllm_build", lambda: "cpu")
    assert preflight_device("vllm:m", vllm_backend) == "cpu"
    monkeypatch.setattr(vllm_backend, "vllm_build", lambda: "gpu")
    monkeypatch.setattr(vllm_backend, "_gpu_count", lambda: 2)
    assert preflight_device("vllm:m?tensor_parallel_size=2", vllm_backend) == "cuda"


def preflight_device(text, backend):
    from tl_eval.harness.models import parse_spec

    return backend.preflight_vllm(parse_spec(text))


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
