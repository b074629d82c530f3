"""The transformers backend on a tiny random Llama with the SmolLM2 tokenizer, and a peft adapter on top of it."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models import load_generator, parse_spec, preflight
from tl_eval.harness.models.builtin import builtin_path
from tl_eval.harness.types import GenerationRequest, SamplingParams

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "peft", "gguf")),
    reason="needs torch, transformers, peft and gguf",
)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared CPU, torch's spinning threads made these tests 7x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer random Llama saved as a checkpoint folder, and a LoRA adapter folder whose base is that folder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny")
    base, adapter = root / "base", root / "adapter"
    smol = builtin_path("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(smol.parent, gguf_file=smol.name)
    tokenizer.eos_token = "<|im_end|>"  # the GGUF's metadata does not say which token ends a chat turn
    tokenizer.save_pretrained(base)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(base)
    # init_lora_weights=False: a random (not zero) update, so the adapter visibly changes outputs.
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(adapter)
    config_path = adapter / "adapter_config.json"
    cfg = json.loads(config_path.read_text())
    cfg["base_model_name_or_path"] = str(base)
    config_path.write_text(json.dumps(cfg))
    return base, adapter


def _ask(text: str, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), sampling=SamplingParams(**sampling))


PROMPTS = ["Hi", "Write a function that adds two numbers and explain it in detail", "What is 2+2?"]


def test_bare_directories_are_hf_and_pass_preflight(tiny):
    base, adapter = tiny
    assert parse_spec(str(base)).kind == "hf" and parse_spec(str(adapter)).kind == "hf"
    preflight(str(base))
    preflight(str(adapter))


def test_batched_left_padded_greedy_equals_one_by_one(tiny):
    base, _ = tiny
    reqs = [_ask(p, max_tokens=6) for p in PROMPTS]
    done = []
    batched = load_generator(f"hf:{base}?batch_size=3").generate(reqs, on_done=lambda i, g: done.append(i))
    single = load_generator(f"hf:{base}?batch_size=1").generate(reqs)
    assert sorted(done) == [0, 1, 2]
    assert [g.text for g in batched] == [g.text for g in single]
    for gen in batched:
        # A random model rarely ends early: full length, and the counts are real token counts.
        assert gen.finish_reason == "length" and gen.completion_tokens == 6
    assert batched[0].prompt_tokens < batched[1].prompt_tokens  # padding is not counted


def test_adapter_loads_on_its_base_and_changes_outputs(tiny):
    base, adapter = tiny
    reqs = [_ask(p, max_tokens=8) for p in PROMPTS]
    plain = load_generator(f"hf:{base}")
    tuned = load_generator(f"hf:{adapter}")
    assert tuned.base == str(base) and tuned.adapter == adapter
    assert [g.text for g in tuned.generate(reqs)] != [g.text for g in plain.generate(reqs)]
    assert tuned.fingerprint() != plain.fingerprint()


def test_fingerprint_follows_the_weights(tiny, tmp_path):
    import shutil

    base, adapter = tiny
    copy = tmp_path / "adapter"
    shutil.copytree(adapter, copy)
    first = load_generator(f"hf:{copy}").fingerprint()
    assert first == load_generator(f"hf:{adapter}").fingerprint()  # same bytes, different folder
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert load_generator(f"hf:{copy}").fingerprint() != first
    assert load_generator(f"hf:{base}?dtype=bfloat16").fingerprint() != load_generator(f"hf:{base}").fingerprint()


def test_stop_strings_and_sampling_seed(tiny):
    base, _ = tiny
    gen = load_generator(f"hf:{base}")
    free = gen.generate([_ask("Hi", max_tokens=8)])[0].text
    words = free.split()
    assert len(words) >= 2
    stop = words[len(words) // 2]
    cut = gen.generate([_ask("Hi", max_tokens=8, stop=(stop,))])[0]
    assert cut.text == free[: free.find(stop)] and cut.finish_reason == "stop"
    sampled = [_ask(p, max_tokens=6, temperature=1.0, seed=5) for p in PROMPTS]
    assert [g.text for g in gen.generate(sampled)] == [g.text for g in gen.generate(sampled)]


def test_broken_paths_name_the_fix(tiny, tmp_path):
    _, adapter = tiny
    with pytest.raises(ModelError, match="does not exist"):
        preflight(f"hf:{tmp_path / 'missing' / 'ckpt'}")
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(ModelError) as info:
        preflight(str(moved))
    assert "?base=" in info.value.fix
    # The override points a moved adapter at its base.
    preflight(f"hf:{moved}?base={tiny[0]}")


@pytest.mark.slow
def test_gguf_backed_base_loads_through_transformers():
    smol = builtin_path("smollm2-135m-instruct")
    gen = load_generator(f"hf:{smol.parent}?gguf_file={smol.name}")
    out = gen.generate([_ask("What is 2+2? Answer briefly.", max_tokens=12)])[0]
    assert "4" in out.text


def test_prefill_continues_the_reply(tiny):
    from transformers import AutoTokenizer

    base, _ = tiny
    gen = load_generator(f"hf:{base}")
    plain = _ask("Plan it", max_tokens=4)
    prefilled = GenerationRequest(messages=plain.messages + ({"role": "assistant", "content": "<reasoning>\n"},),
                                  sampling=SamplingParams(max_tokens=4, stop=("</reasoning>",)))
    a, b = gen.generate([plain, prefilled])
    extra = len(AutoTokenizer.from_pretrained(base)("<reasoning>\n", add_special_tokens=False)["input_ids"])
    assert b.prompt_tokens == a.prompt_tokens + extra  # the prefill is in the prompt, not a new turn
    assert "<reasoning>" not in b.text
