"""Decoding of many prompts at once in one llama.cpp context: one sequence id per prompt, one decode call per step
for all of them (continuous batching: a finished sequence's slot takes the next prompt at once; once none waits,
the running sequences move to consecutive ids, which llama.cpp decodes in one pass), and a prompt's longest prefix
already in some sequence's cache is reused instead of prefilled again.

On a CPU a single sequence's decode step is bound by reading the weights; decoding several sequences reads them
once for all. llama-cpp-python's high-level API decodes one sequence per context, hence the low-level calls.
What it buys on 2 cores, and how often its greedy outputs differ from the sequential path's (the rounding of a
batched step depends on what else is in it): docs/models.md, measured by tests/benchmarks/bench_batched.py.
Sampled requests choose their tokens here (`sample_token`, one seeded generator per request): llama.cpp's
sampler chain works on one context's logits at a time, so their tokens differ from the sequential path's for
the same seed (the backend's cache key says which path made them).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_REUSE = 16  # shorter shared prefixes are prefilled again: a copy of a whole sequence costs more than they save


@dataclass
class BatchItem:
    """One prompt to complete: its tokens, token budget and stop strings."""

    index: int
    prompt: list[int]
    max_tokens: int
    stops: Sequence[str]
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass
class BatchResult:
    text: str
    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int
    seconds: float = 0.0  # from the prompt's prefill to the last token
    prompt_tokens_computed: int = 0  # the prompt tokens prefilled; the rest was a prefix already in the cache


@dataclass
class _Slot:
    item: BatchItem
    tokens: list[int] = field(default_factory=list)
    pos: int = 0
    next: int = -1  # the greedy choice from its latest logits (the next decode call overwrites them)
    start: float = field(default_factory=time.perf_counter)
    reused: int = 0  # prompt tokens taken from the cache instead of prefilled

    def __post_init__(self):
        self.rng = np.random.default_rng(self.item.seed) if self.item.temperature > 0 else None


class BatchDecoder:
    """A context of `n_seq` sequences of `n_ctx` tokens each over an already loaded llama-cpp-python model."""

    def __init__(self, llama, n_seq: int, n_ctx: int, n_threads: int, n_batch: int = 512):
        import llama_cpp as L

        self._L, self._llama, self.n_seq, self.n_ctx = L, llama, n_seq, n_ctx
        # llama-cpp-python's own context settings (flash attention, KV types, ...), so that logits are computed the
        # way the sequential path computes them; only the size and the number of sequences change.
        params = L.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx = n_ctx * n_seq  # split evenly: each sequence gets n_ctx
        params.n_seq_max = n_seq
        params.n_batch = max(n_batch, n_seq)
        params.n_ubatch = min(params.n_batch, 512)
        params.n_threads = params.n_threads_batch = n_threads
        self._ctx = L.llama_init_from_model(llama._model.model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {n_seq} x {n_ctx} tokens")
        self._n_batch = params.n_batch
        self._batch = L.llama_batch_init(self._n_batch, 0, 1)
        self._vocab = L.llama_model_get_vocab(llama._model.model)
        self._n_vocab = L.llama_vocab_n_tokens(self._vocab)

    def close(self) -> None:
        if self._ctx:
            self._L.llama_batch_free(self._batch)
            self._L.llama_free(self._ctx)
            self._ctx = None

    # -- the batch --------------------------------------------------------------------------------------------
    def _clear(self) -> None:
        self._batch.n_tokens = 0

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        b, n = self._batch, self._batch.n_tokens
        b.token[n], b.pos[n], b.n_seq_id[n], b.logits[n] = token, pos, 1, logits
        b.seq_id[n][0] = seq
        b.n_tokens = n + 1
        return n

    def _decode(self) -> None:
        if self._L.llama_decode(self._ctx, self._batch) != 0:
            raise RuntimeError("llama_decode failed (the batch does not fit the context)")

    def _choose(self, row: int, slot: _Slot) -> int:
        logits = np.ctypeslib.as_array(self._L.llama_get_logits_ith(self._ctx, row), shape=(self._n_vocab,))
        if slot.rng is None:
            return int(logits.argmax())
        return sample_token(logits, slot.item.temperature, slot.item.top_p, slot.rng)

    def _reuse(self, seq: int, prompt: list[int]) -> int:
        """Put the longest prefix of `prompt` that some sequence's cache holds into `seq`'s cache; its length.

        The conditions of one problem share the system prompt and the problem text (and `truncated@F` shares the
        trace's start), so most of a prompt is often in the cache already: its keys and values are the same
        whatever follows them. A prefix held by another sequence is copied (llama.cpp copies the whole stream;
        the tail past the prefix is then dropped).
        """
        L, memory = self._L, self._L.llama_get_memory(self._ctx)
        best, length = seq, 0
        for other, tokens in self._cached.items():
            n = _common_prefix(tokens, prompt)
            if n > length or (n == length and other == seq):
                best, length = other, n
        length = min(length, len(prompt) - 1)  # the last prompt token is decoded for its logits
        if length < MIN_REUSE:
            L.llama_memory_seq_rm(memory, seq, -1, -1)
            self._cached[seq] = []
            return 0
        if best != seq:
            L.llama_memory_seq_rm(memory, seq, -1, -1)
            L.llama_memory_seq_cp(memory, best, seq, -1, -1)
        L.llama_memory_seq_rm(memory, seq, length, -1)
        self._cached[seq] = prompt[:length]
        return length

    def _prefill(self, seq: int, slot: _Slot) -> None:
        """The prompt past its reused prefix into the sequence's cache, in chunks of n_batch, and its first greedy
        token. In calls of its own: mixing prompt chunks into the decode steps changed more outputs (9 of 20 against
        4 of 20, docs/models.md) and was not faster on 2 cores."""
        prompt = slot.item.prompt
        slot.reused = self._reuse(seq, prompt)
        for start in range(slot.reused, len(prompt), self._n_batch):
            self._clear()
            chunk = prompt[start:start + self._n_batch]
            rows = [self._add(token, start + j, seq, start + j == len(prompt) - 1) for j, token in enumerate(chunk)]
            self._decode()
        self._cached[seq] = list(prompt)
        slot.pos, slot.next = len(prompt), self._choose(rows[-1], slot)

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self, items: Sequence[BatchItem], on_done: Callable[[int, BatchResult], None] | None = None
            ) -> dict[int, BatchResult]:
        """Complete every item; a finished sequence's slot takes the next waiting item at once."""
        L, memory = self._L, self._L.llama_get_memory(self._ctx)
        # An empty cache at the start of every call: where a prompt's tokens land in the cache changes the rounding
        # of attention, and so, at a near tie, a greedy token; within the call, prefixes are reused (`_reuse`).
        L.llama_memory_clear(memory, True)
        self._cached: dict[int, list[int]] = {}  # the tokens whose keys and values each sequence's cache holds
        pending, slots, out = deque(items), {}, {}
        while pending or slots:
            for seq in range(self.n_seq):
                if seq not in slots and pending:
                    slot = _Slot(pending.popleft())
                    self._prefill(seq, slot)
                    slots[seq] = slot
            # Each sequence takes its chosen token, or ends; the ones that go on are decoded together.
            for seq, slot in list(slots.items()):
                result = self._step(slot, slot.next)
                if result is not None:  # its cache stays, for the prefixes of later prompts
                    out[slot.item.index] = result
                    del slots[seq]
                    if on_done is not None:
                        on_done(slot.item.index, result)
            if not slots:
                continue
            if not pending:
                self._compact(slots)
            self._clear()
            rows = {}
            # In ascending sequence ids: llama.cpp splits a batch of several sequences into one pass over the
            # weights per run of consecutive ids (llama_batch_allocr::split_equal, sequential), so a refilled slot
            # out of order would cost a pass of its own.
            for seq, slot in sorted(slots.items()):
                rows[seq] = self._add(slot.tokens[-1], slot.pos, seq, True)
                self._cached[seq].append(slot.tokens[-1])
                slot.pos += 1
            self._decode()
            for seq, row in rows.items():
                slots[seq].next = self._choose(row, slots[seq])
        return out

    def _compact(self, slots: dict[int, _Slot]) -> None:
        """Move the highest running sequences into the lowest free slots, so that the running ones have
        consecutive ids. Once no prompt waits to fill a finished sequence's slot, gaps appear, and each run of
        consecutive ids costs a pass over the weights of its own (see `run`); a move copies the sequence's cache
        to the other stream."""
        L, memory = self._L, self._L.llama_get_memory(self._ctx)
        free = sorted(set(range(self.n_seq)) - set(slots))
        while free and free[0] < max(slots):
            src, dst = max(slots), free.pop(0)
            L.llama_memory_seq_cp(memory, src, dst, -1, -1)  # across streams: replaces dst's whole cache
            slots[dst], self._cached[dst] = slots.pop(src), list(self._cached[src])

    def _step(self, slot: _Slot, token: int) -> BatchResult | None:
        """Take `token` into the slot's completion, or the result when the sequence ends here."""
        item = slot.item
        if self._L.llama_vocab_is_eog(self._vocab, token):
            return self._result(slot, "stop")
        slot.tokens.append(token)
        text = self._text(slot.tokens)
        for stop in item.stops:
            if stop and stop in text:
                return BatchResult(text[: text.index(stop)], "stop", len(item.prompt), len(slot.tokens),
                                   time.perf_counter() - slot.start, len(item.prompt) - slot.reused)
        if len(slot.tokens) >= item.max_tokens:
            return self._result(slot, "length")
        return None

    def _text(self, tokens: list[int]) -> str:
        return self._llama.detokenize(tokens).decode("utf-8", errors="ignore")

    def _result(self, slot: _Slot, reason: str) -> BatchResult:
        return BatchResult(self._text(slot.tokens), reason, len(slot.item.prompt), len(slot.tokens),
                           time.perf_counter() - slot.start, len(slot.item.prompt) - slot.reused)


TOP_P_CANDIDATES = 256  # top-p looks at the most likely tokens first: sorting all 151k logits per step is slow


def sample_token(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """A token drawn from softmax(logits / temperature), cut to its nucleus of mass `top_p` (temperature first,
    then top-p, as vLLM and transformers apply them)."""
    scaled = logits.astype(np.float64) / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p < 1.0:
        k = min(TOP_P_CANDIDATES, probs.size)
        top = np.argpartition(probs, -k)[-k:]
        if probs[top].sum() < top_p:  # a flat distribution: its nucleus is not among the first candidates
            top = np.arange(probs.size)
        order = top[np.argsort(probs[top])[::-1]]
        keep = min(int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1, order.size)  # smallest prefix of mass >= top_p
        nucleus = order[:keep]
        return int(nucleus[rng.choice(keep, p=probs[nucleus] / probs[nucleus].sum())])
    return int(rng.choice(probs.size, p=probs))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n

