"""Train the Reason RM on TraceLift-Groups rows: batches of groups, checkpoints, resume, held-out metrics."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from tl_eval.harness.errors import ConfigError
from tl_eval.training.groups.schema import RUBRIC_DIMS, GroupRow, Trace, read_groups
from tl_eval.training.reason_rm.backbone import load_backbone
from tl_eval.training.reason_rm.encode import encode
from tl_eval.training.reason_rm.frozen_cache import FrozenCache, split_index
from tl_eval.training.reason_rm.metrics import heldout_metrics, length_score_fn
from tl_eval.training.reason_rm.model import ReasonRM, rm_loss
from tl_eval.training.reason_rm.samples import by_task_type
from tl_eval.training.reason_rm.scorer import RMScorer
from tl_eval.training.reason_rm.store import RMConfig, hidden_size_of, save_rm, wrap_lora


@dataclass
class TrainConfig:
    """Options of `tl-eval train-rm`."""

    groups: str
    base: str
    output: str
    max_length: int = 256
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs
    groups_per_batch: int = 2
    negatives_per_group: int = 3
    lr: float = 2e-4  # backbone (LoRA or full)
    head_lr: float = 1e-3
    lora_r: int = 16
    lora_alpha: int = 32
    lora_layers: int | None = None  # LoRA on the last N decoder layers only (None: all)
    cache_frozen: bool = True  # with lora_layers: run the frozen layers once per trace (frozen_cache.py)
    full: bool | None = None  # None: full fine-tuning for tiny backbones, LoRA otherwise
    heldout: float = 0.1
    max_groups: int | None = None
    save_every: int = 50
    seed: int = 0
    progress: bool = True


@dataclass
class TrainResult:
    output: str
    steps: int
    seconds_per_step: float
    n_train_groups: int
    n_heldout_groups: int
    heldout: dict
    cache_seconds: float = 0.0  # time spent running the frozen layers once per trace (0 without the cache)
    baselines: dict = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)


def split_groups(rows: list[GroupRow], heldout: float, seed: int) -> tuple[list[GroupRow], list[GroupRow]]:
    """A seeded split by problem (never one problem on both sides); held-out rows need a negative."""
    if not 0.0 <= heldout < 1.0:
        raise ConfigError(f"--heldout {heldout} is not a fraction in [0, 1)", "use e.g. --heldout 0.1")
    ids = sorted({r.problem_id for r in rows})
    random.Random(seed).shuffle(ids)
    n_out = math.ceil(heldout * len(ids)) if heldout > 0 else 0
    out_ids = set(ids[:n_out])
    train = [r for r in rows if r.problem_id not in out_ids]
    test = [r for r in rows if r.problem_id in out_ids and r.negative_bank]
    if not train:
        raise ConfigError(f"no training groups left after holding out {heldout:.0%}", "lower --heldout or add groups")
    return train, test


def _batch_traces(rows: list[GroupRow], order: list[int], step: int, cfg: TrainConfig) -> list[tuple[GroupRow, list[Trace]]]:
    """The groups of one step with one positive and up to k negatives each; a pure function of (seed, step)."""
    per_epoch = max(1, len(order) // cfg.groups_per_batch)
    epoch, k = divmod(step, per_epoch)
    perm = order[:]
    random.Random(cfg.seed * 100_003 + epoch).shuffle(perm)
    rng = random.Random(cfg.seed * 1_000_003 + step)
    picked = []
    for gi in perm[k * cfg.groups_per_batch: (k + 1) * cfg.groups_per_batch]:
        row = rows[gi]
        negs = rng.sample(row.negative_bank, min(cfg.negatives_per_group, len(row.negative_bank)))
        picked.append((row, [rng.choice(row.positive_pool)] + negs))
    return picked


def _step_loss(forward, picked, device):
    losses = []
    # One forward per task type: their rubrics differ, the prompt prefix names the type.
    for tt, of_type in by_task_type(picked, key=lambda pair: pair[0].task_type).items():
        problems, traces, labels, totals, pairs = [], [], [], [], []
        for row, group in of_type:
            base = len(traces)
            for j, t in enumerate(group):
                problems.append(row.problem)
                traces.append(t.reasoning)
                labels.append([int(t.rubric[d]) for d in RUBRIC_DIMS[tt]])
                totals.append(float(t.rubric["total"]))
                if j > 0:  # position 0 is the positive
                    pairs.append((base, base + j))
        out = forward(tt, problems, traces)
        parts = rm_loss(out, torch.tensor(labels, device=device), torch.tensor(totals, device=device),
                        torch.tensor(pairs, device=device, dtype=torch.long) if pairs else None)
        losses.append((parts, len(traces)))
    n = sum(c for _, c in losses)
    return sum(p.loss * c for p, c in losses) / n, losses


def _trainable(rm: ReasonRM) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in rm.named_parameters() if p.requires_grad}


def _latest_checkpoint(out: Path) -> Path | None:
    ckpts = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    done = [c for c in ckpts if (c / "state.json").is_file()]
    return done[-1] if done else None


def _save_checkpoint(out: Path, rm: ReasonRM, opt, step: int, losses: list[float], keep: int = 2) -> None:
    from safetensors.torch import save_file

    ck = out / "checkpoints" / f"step-{step}"
    ck.mkdir(parents=True, exist_ok=True)
    save_file({n: p.detach().cpu().contiguous() for n, p in _trainable(rm).items()}, str(ck / "trainable.safetensors"))
    torch.save(opt.state_dict(), ck / "optimizer.pt")
    # state.json last: a checkpoint without it is incomplete and is ignored on resume.
    (ck / "state.json").write_text(json.dumps({"step": step, "losses": losses}))
    for old in sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(ck: Path, rm: ReasonRM, opt, device) -> tuple[int, list[float]]:
    from safetensors.torch import load_file

    params = _trainable(rm)
    for n, t in load_file(str(ck / "trainable.safetensors")).items():
        if n not in params:
            raise ConfigError(f"checkpoint {ck} does not match this model (unknown parameter {n})",
                              "use the same --base and mode as the interrupted run, or a fresh --output")
        params[n].data.copy_(t.to(device))
    opt.load_state_dict(torch.load(ck / "optimizer.pt", map_location=device, weights_only=True))
    state = json.loads((ck / "state.json").read_text())
    return int(state["step"]), list(state["losses"])


def build_rm(base: str, *, full: bool | None, lora_r: int, lora_alpha: int, seed: int, max_length: int,
             lora_layers: int | None = None):
    """A fresh RM over `base`, with LoRA or full fine-tuning; returns (rm, tokenizer, RMConfig)."""
    bb = load_backbone(base, seed=seed)
    full = bb.tiny if full is None else full
    torch.manual_seed(seed)
    backbone = bb.model if full else wrap_lora(bb.model, lora_r, lora_alpha, top_layers=lora_layers)
    hidden = hidden_size_of(bb.model)
    rm = ReasonRM(backbone, hidden)
    cfg = RMConfig(base=base, mode="full" if full else "lora", hidden_size=hidden, max_length=max_length,
                   lora={} if full else {"r": lora_r, "alpha": lora_alpha, "layers": lora_layers},
                   base_seed=seed)
    return rm, bb.tokenizer, cfg


def scorer_fn(scorer: RMScorer):
    def fn(traces, problems, task_type):
        r = scorer.score_full(traces, problems, task_type)
        return r.scores, r.totals
    return fn


def train_rm(cfg: TrainConfig, device: str | None = None) -> TrainResult:
    """Train, save the RM to cfg.output, and write metrics.json there (held-out metrics and baselines)."""
    from tqdm.auto import tqdm

    rows = read_groups(cfg.groups)
    if cfg.max_groups:
        rows = rows[: cfg.max_groups]
    if cfg.groups_per_batch < 1 or cfg.negatives_per_group < 1:
        raise ConfigError("--groups-per-batch and --negatives-per-group must be at least 1", "use e.g. 2 and 3")
    train, test = split_groups(rows, cfg.heldout, cfg.seed)
    train = [r for r in train if r.negative_bank] or train
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rm, tok, rm_cfg = build_rm(cfg.base, full=cfg.full, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                               seed=cfg.seed, max_length=cfg.max_length, lora_layers=cfg.lora_layers)
    rm.to(dev).train()
    split = split_index(rm) if cfg.cache_frozen else None
    cache = FrozenCache(rm, tok, cfg.max_length, split) if split else None
    cache_seconds = 0.0
    if cache is not None:
        # The cache pays off only if each trace is seen many times: fix each group's negatives once (seeded).
        train = [replace(r, negative_bank=random.Random(f"{cfg.seed}:{r.problem_id}").sample(
            r.negative_bank, min(cfg.negatives_per_group, len(r.negative_bank)))) for r in train]
        items = [(r.task_type, r.problem, t.reasoning) for r in train + test for t in r.positive_pool + r.negative_bank]
        t0 = time.perf_counter()
        with tqdm(total=len(set(items)), desc="frozen layers", disable=not cfg.progress) as bar:
            cache.ensure(items, progress=bar)
        cache_seconds = time.perf_counter() - t0

        def forward(tt, problems, traces):
            return cache.forward([(tt, p, t) for p, t in zip(problems, traces)])
        score_fn = cache.score_fn()
    else:
        def forward(tt, problems, traces):
            batch = encode(tok, problems, traces, tt, cfg.max_length)
            return rm(**{k: v.to(dev) for k, v in batch.items()})
        score_fn = scorer_fn(RMScorer(rm, tok, cfg.max_length))
    head_ids = {id(p) for p in rm.heads().parameters()}
    params = list(_trainable(rm).values())
    opt = torch.optim.AdamW([
        {"params": [p for p in params if id(p) not in head_ids], "lr": cfg.lr},
        {"params": [p for p in params if id(p) in head_ids], "lr": cfg.head_lr},
    ], weight_decay=0.0)
    per_epoch = max(1, len(train) // cfg.groups_per_batch)
    total_steps = cfg.max_steps or max(1, round(cfg.epochs * per_epoch))
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)

    step, losses = 0, []
    baselines = {}
    ck = _latest_checkpoint(out)
    if ck is not None:
        step, losses = _load_checkpoint(ck, rm, opt, dev)
        prev = out / "baselines.json"
        baselines = json.loads(prev.read_text()) if prev.is_file() else {}
    elif test:
        # Measured before any update: what the same architecture scores with no training.
        baselines = {"untrained": heldout_metrics(score_fn, test), "length": heldout_metrics(length_score_fn, test)}
        (out / "baselines.json").write_text(json.dumps(baselines, indent=2))
    order = list(range(len(train)))
    bar = tqdm(total=total_steps, initial=step, desc="train-rm", disable=not cfg.progress)
    t0, start_step = time.perf_counter(), step
    log = (out / "train_log.jsonl").open("a")
    while step < total_steps:
        picked = _batch_traces(train, order, step, cfg)
        loss, parts = _step_loss(forward, picked, dev)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        p0 = parts[0][0]
        log.write(json.dumps({"step": step, "loss": losses[-1], "ce": p0.ce, "huber": p0.huber,
                              "pairwise": p0.pairwise, "seconds": time.perf_counter() - t0}) + "\n")
        log.flush()
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if step == total_steps or (cfg.save_every and step % cfg.save_every == 0):
            _save_checkpoint(out, rm, opt, step, losses)
    bar.close()
    log.close()
    sec_per_step = (time.perf_counter() - t0) / max(1, step - start_step)
    save_rm(rm, tok, rm_cfg, out)
    heldout = heldout_metrics(score_fn, test) if test else {}
    result = TrainResult(str(out), step, sec_per_step, len(train), len(test), heldout, cache_seconds, baselines,
                         losses)
    (out / "metrics.json").write_text(json.dumps({k: v for k, v in asdict(result).items() if k != "losses"},
                                                 indent=2) + "\n")
    return result
