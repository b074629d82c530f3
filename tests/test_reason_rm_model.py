"""Reason RM on a tiny random backbone built from a config: shapes, score formula, loss, save/reload."""

import math

import pytest
import torch

from tl_eval.training.reason_rm.encode import encode
from tl_eval.training.reason_rm.model import N_DIMS, N_LABELS, ReasonRM, RMOutput, last_token_pool, rm_loss, rm_score
from tl_eval.training.reason_rm.scorer import RMScorer, load_scorer
from tl_eval.training.reason_rm.store import save_rm
from tl_eval.training.reason_rm.train import build_rm

PROBLEMS = ["Tom has 3 apples and buys 5 more. How many apples does he have?",
            "A shop sells pens at $2 each. How much do 7 pens cost?"]
TRACES = ["Tom starts with 3 apples.\nHe buys 5 more, so 3 + 5 = 8.",
          "Each pen costs $2.\nSeven pens cost 7 * 2 = 14 dollars, which is the total cost."]


@pytest.fixture(scope="module")
def tiny():
    rm, tok, cfg = build_rm("random:tiny", full=None, lora_r=4, lora_alpha=8, seed=0, max_length=128)
    return rm, tok, cfg


def test_tiny_backbone_is_full_finetuned_with_the_smollm2_tokenizer(tiny):
    rm, tok, cfg = tiny
    assert cfg.mode == "full" and cfg.hidden_size == 32
    assert tok.eos_token == "<|im_end|>" and len(tok) == 49152
    assert all(p.requires_grad for p in rm.parameters())


def test_forward_shapes_and_score_range(tiny):
    rm, tok, _ = tiny
    batch = encode(tok, PROBLEMS, TRACES, "math", 128)
    out = rm(**batch)
    assert out.rubric_logits.shape == (2, N_DIMS, N_LABELS)
    assert out.total_logit.shape == (2,)
    assert ((out.score >= 0) & (out.score <= 1)).all()


def test_score_formula_matches_design():
    logits = torch.full((1, N_DIMS, N_LABELS), -1e4)
    labels = [4, 3, 2, 1, 0]
    for d, lab in enumerate(labels):
        logits[0, d, lab] = 0.0  # one-hot: E[dim] = label
    total = torch.tensor([0.3])
    expected = 0.5 * sum(0.2 * lab / 4 for lab in labels) + 0.5 / (1 + math.exp(-0.3))
    assert rm_score(logits, total).item() == pytest.approx(expected, abs=1e-6)
    # Uniform rubric: E[dim] = 2 for every dim.
    uniform = rm_score(torch.zeros(1, N_DIMS, N_LABELS), torch.tensor([0.0])).item()
    assert uniform == pytest.approx(0.5 * 0.5 + 0.25, abs=1e-6)


def test_encode_ends_with_eos_and_truncates_long_traces(tiny):
    _, tok, _ = tiny
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    batch = encode(tok, [PROBLEMS[0], PROBLEMS[1]], ["word " * 1000, TRACES[1]], "math", 128)
    lengths = batch["attention_mask"].sum(1)
    assert lengths[0] == 128 and lengths[1] < 128
    for i, n in enumerate(lengths.tolist()):
        assert batch["input_ids"][i, n - 1] == eos
    # The problem keeps a share of the window even when the trace alone would fill it.
    text = tok.decode(batch["input_ids"][0])
    assert "Tom has 3 apples" in text


def test_padding_does_not_change_a_score(tiny):
    rm, tok, _ = tiny
    rm.eval()
    scorer = RMScorer(rm, tok, 128, batch_size=1)
    alone = scorer.score([TRACES[0]], [PROBLEMS[0]], "math")
    scorer.batch_size = 8  # now padded next to a longer trace
    together = scorer.score([TRACES[0], "x " * 60], [PROBLEMS[0], PROBLEMS[1]], "math")
    assert together[0] == pytest.approx(alone[0], abs=1e-5)


def test_last_token_pool_picks_the_last_real_token():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float).view(2, 4, 1)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert last_token_pool(hidden, mask).flatten().tolist() == [1.0, 7.0]


def test_loss_decreases_on_a_fixed_batch():
    rm, tok, _ = build_rm("random:tiny", full=None, lora_r=4, lora_alpha=8, seed=1, max_length=128)
    rm.train()
    batch = encode(tok, PROBLEMS * 2, TRACES + ["He buys 5 more, so 3 - 5 = 8.", "Seven pens cost 7 * 3 = 14."],
                   "math", 128)
    labels = torch.tensor([[4] * 5, [4] * 5, [4, 4, 4, 1, 2], [4, 4, 4, 1, 2]])
    totals = torch.tensor([1.0, 1.0, 0.75, 0.75])
    pairs = torch.tensor([[0, 2], [1, 3]])
    opt = torch.optim.AdamW(rm.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        parts = rm_loss(rm(**batch), labels, totals, pairs)
        opt.zero_grad()
        parts.loss.backward()
        opt.step()
        losses.append(parts.loss.item())
    assert losses[-1] < 0.5 * losses[0]
    out = rm(**batch)
    assert out.score[0] > out.score[2] and out.score[1] > out.score[3]


def test_loss_weights():
    out = RMOutput(torch.zeros(2, N_DIMS, N_LABELS, requires_grad=True), torch.zeros(2, requires_grad=True))
    labels = torch.zeros(2, N_DIMS, dtype=torch.long)
    totals = torch.tensor([1.0, 0.0])
    parts = rm_loss(out, labels, totals, torch.tensor([[0, 1]]))
    ce = math.log(N_LABELS)
    huber = 0.5 * 0.5 ** 2  # |sigmoid(0) - target| = 0.5 for both rows
    pair = math.log(2)  # equal scores
    assert parts.loss.item() == pytest.approx(ce + 0.5 * huber + 0.7 * pair, abs=1e-5)


@pytest.mark.parametrize("full", [True, False])
def test_save_and_reload_give_identical_scores(tmp_path, full):
    rm, tok, cfg = build_rm("random:tiny", full=full, lora_r=4, lora_alpha=8, seed=2, max_length=128)
    # Move off the initialisation so a reload that silently re-initialises would be caught.
    with torch.no_grad():
        for p in rm.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    before = RMScorer(rm, tok, 128).score(TRACES, PROBLEMS, "math")
    save_rm(rm, tok, cfg, tmp_path / "rm")
    scorer = load_scorer(tmp_path / "rm", device="cpu")
    after = scorer.score(TRACES, PROBLEMS, "math")
    assert after == pytest.approx(before, abs=1e-6)
    assert len(set(round(s, 6) for s in after)) == 2  # the two traces really get different scores


def test_reason_rm_is_an_nn_module(tiny):
    assert isinstance(tiny[0], ReasonRM) and isinstance(tiny[0], torch.nn.Module)


def test_frozen_layer_cache_gives_the_same_output_as_a_full_forward():
    from tl_eval.training.reason_rm.frozen_cache import FrozenCache, split_index

    rm, tok, cfg = build_rm("random:tiny", full=False, lora_r=4, lora_alpha=8, seed=3, max_length=128, lora_layers=1)
    assert cfg.lora["layers"] == 1 and split_index(rm) == 1  # LoRA on layer 1 only; layer 0 frozen
    with torch.no_grad():
        for p in rm.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    rm.eval()
    full = rm(**encode(tok, PROBLEMS, TRACES, "math", 128))
    cache = FrozenCache(rm, tok, 128, split_index(rm))
    cached = cache.forward([("math", p, t) for p, t in zip(PROBLEMS, TRACES)])
    assert torch.allclose(cached.score, full.score, atol=1e-5)
    assert torch.allclose(cached.rubric_logits, full.rubric_logits, atol=1e-4)
    # Gradients reach the LoRA weights of the top layer through the cached path.
    cached.score.sum().backward()
    lora_grads = [p.grad for n, p in rm.named_parameters() if "lora_" in n]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)
