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
