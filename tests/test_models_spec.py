"""Model spec parsing: every kind, bare paths, the frozen alias, and typos that must fail with a suggestion."""

from __future__ import annotations

import pytest

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models import DEFAULT_FROZEN, FROZEN_ENV, ModelSpec, load_generator, parse_spec
from tl_eval.harness.models.spec import openai_endpoint


def test_builtin_spec_is_canonical_and_case_insensitive():
    spec = parse_spec("builtin:Qwen2.5-Coder-0.5B-Instruct?n_threads=2")
    assert spec == ModelSpec("builtin", "qwen2.5-coder-0.5b-instruct", {"n_threads": "2"},
                             "builtin:qwen2.5-coder-0.5b-instruct?n_threads=2")


@pytest.mark.parametrize(
    "text, kind, target",
    [
        ("llamacpp:/models/x.gguf", "llamacpp", "/models/x.gguf"),
        ("hf:Qwen/Qwen2.5-0.5B-Instruct", "hf", "Qwen/Qwen2.5-0.5B-Instruct"),
        ("vllm:Qwen/Qwen2.5-Coder-7B-Instruct", "vllm", "Qwen/Qwen2.5-Coder-7B-Instruct"),
        ("scripted:echo", "scripted", "echo"),
        ("openai:qwen@http://127.0.0.1:8000/v1", "openai", "qwen@http://127.0.0.1:8000/v1"),
    ],
)
def test_each_kind(text, kind, target):
    spec = parse_spec(text)
    assert (spec.kind, spec.target, spec.raw) == (kind, target, text)


def test_options_are_parsed_and_checked_per_kind():
    spec = parse_spec("vllm:m?tensor_parallel_size=2&data_parallel_size=4&gpu_memory_utilization=0.8")
    assert spec.options == {"tensor_parallel_size": "2", "data_parallel_size": "4", "gpu_memory_utilization": "0.8"}
    with pytest.raises(ConfigError, match=r"unknown option 'n_ctxx'.*did you mean 'n_ctx'"):
        parse_spec("llamacpp:/m.gguf?n_ctxx=2048")
    with pytest.raises(ConfigError, match="given twice"):
        parse_spec("llamacpp:/m.gguf?n_ctx=1&n_ctx=2")
    with pytest.raises(ConfigError, match="malformed options"):
        parse_spec("llamacpp:/m.gguf?n_ctx")


def test_scripted_options_are_free_form():
    assert parse_spec("scripted:constant?text=a b").options == {"text": "a b"}


def test_bare_gguf_path_is_llamacpp(tmp_path):
    spec = parse_spec(str(tmp_path / "model.gguf") + "?n_ctx=1024")
    assert spec.kind == "llamacpp" and spec.target == str(tmp_path / "model.gguf")
    assert spec.options == {"n_ctx": "1024"}
    assert spec.raw == f"llamacpp:{tmp_path / 'model.gguf'}?n_ctx=1024"


@pytest.mark.parametrize("marker", ["config.json", "adapter_config.json"])
def test_bare_model_directory_is_hf(tmp_path, marker):
    (tmp_path / marker).write_text("{}")
    spec = parse_spec(str(tmp_path))
    assert (spec.kind, spec.target) == ("hf", str(tmp_path))


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="neither a .gguf file nor a directory with config.json"):
        parse_spec(str(tmp_path))


@pytest.mark.parametrize(
    "text, suggestion",
    [
        ("buildin:qwen2.5-coder-0.5b-instruct", "builtin:qwen2.5-coder-0.5b-instruct"),
        ("scriptd:echo", "scripted:echo"),
        ("openia:m@http://h:1/v1", "openai:m@http://h:1/v1"),
        ("builtin:qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct"),
        ("builtin:smollm2-135m", "smollm2-135m-instruct"),
        ("smollm2-135m-instruct", "builtin:smollm2-135m-instruct"),
        ("http://127.0.0.1:8000/v1", "openai:MODEL@http://127.0.0.1:8000/v1"),
    ],
)
def test_typos_get_a_did_you_mean(text, suggestion):
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    assert f"did you mean '{suggestion}'" in str(info.value)
    assert info.value.fix  # every error names a fix


@pytest.mark.parametrize("text", ["", "   ", "builtin:", "hf:", "openai:", "nonsense:thing", "just-a-word"])
def test_missing_target_or_unknown_kind(text):
    with pytest.raises(ConfigError):
        parse_spec(text)


def test_frozen_alias_argument_env_and_default(monkeypatch):
    monkeypatch.delenv(FROZEN_ENV, raising=False)
    assert parse_spec("frozen").raw == DEFAULT_FROZEN
    monkeypatch.setenv(FROZEN_ENV, "builtin:smollm2-135m-instruct")
    assert parse_spec("frozen").target == "smollm2-135m-instruct"
    # The caller's argument wins over the environment.
    assert parse_spec("frozen", frozen="scripted:echo").raw == "scripted:echo"
    merged = parse_spec("frozen?n_threads=1", frozen="builtin:smollm2-135m-instruct?n_ctx=512")
    assert merged.options == {"n_ctx": "512", "n_threads": "1"}


def test_frozen_cannot_point_at_itself():
    with pytest.raises(ConfigError, match="frozen"):
        parse_spec("frozen", frozen="frozen")


def test_openai_endpoint_splits_urls():
    model, urls = openai_endpoint(parse_spec("openai:org/model@http://a:1/v1/,http://b:2/v1|https://c/v1"))
    assert model == "org/model"
    assert urls == ["http://a:1/v1", "http://b:2/v1", "https://c/v1"]
    with pytest.raises(ConfigError, match="no model name"):
        parse_spec("openai:@http://a:1/v1")
    with pytest.raises(ConfigError, match="http://"):
        parse_spec("openai:m@ftp://a")


def test_openai_without_url_uses_openai_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy:9/v1")
    assert openai_endpoint(parse_spec("openai:gpt-x")) == ("gpt-x", ["http://proxy:9/v1"])


def test_overrides_merge_into_options_and_are_checked():
    gen = load_generator("scripted:constant?text=hi", text="bye")
    assert gen.spec == "scripted:constant?text=bye"
    with pytest.raises(ConfigError, match="did you mean 'n_threads'"):
        load_generator("builtin:smollm2-135m-instruct", n_thread=2)


def test_bad_numeric_option_names_the_key():
    with pytest.raises(ConfigError, match="n_ctx='big'"):
        load_generator("builtin:smollm2-135m-instruct?n_ctx=big")
