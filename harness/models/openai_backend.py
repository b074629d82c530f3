"""OpenAI-compatible servers (vLLM, llama.cpp, hosted APIs): concurrent requests, client-side balancing, retries."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx

from harness.errors import ModelError
from harness.models.base import Generator
from harness.models.seeds import request_seed
from harness.models.spec import ModelSpec, float_option, int_option, openai_endpoint
from harness.types import Generation, GenerationRequest

log = logging.getLogger(__name__)

_START_HINT = (
    "is the server running? start one with `python -m llama_cpp.server --model MODEL.gguf --host 127.0.0.1 "
    "--port 8000 --n_threads N` or `vllm serve MODEL --port 8000`, or fix the URL"
)
_CONTEXT_WORDS = ("context length", "context window", "maximum context", "too long", "exceed")


def _api_key(spec: ModelSpec) -> str:
    env = spec.options.get("api_key_env", "OPENAI_API_KEY")
    # Local servers ignore the key, but the client insists on one.
    return os.environ.get(env) or "EMPTY"


def probe(spec: ModelSpec, timeout: float = 5.0) -> dict[str, list[str] | None]:
    """GET /models on every base URL: {url: served model ids, or None when the URL does not answer}."""
    _, urls = openai_endpoint(spec)
    headers = {"Authorization": f"Bearer {_api_key(spec)}"}
    found: dict[str, list[str] | None] = {}
    for url in urls:
        try:
            response = httpx.get(f"{url}/models", headers=headers, timeout=timeout)
        except httpx.HTTPError:
            found[url] = None
            continue
        if response.status_code in (401, 403):
            env = spec.options.get("api_key_env", "OPENAI_API_KEY")
            raise ModelError(f"{url} refused the API key ({response.status_code})", f"set {env} to a valid key")
        if response.status_code != 200:
            found[url] = None
            continue
        try:
            found[url] = [m.get("id", "") for m in response.json().get("data", [])]
        except ValueError:
            found[url] = []
    return found


def preflight_openai(spec: ModelSpec) -> None:
    """ModelError unless at least one base URL answers; warns about dead URLs and an unlisted model."""
    model, _ = openai_endpoint(spec)
    found = probe(spec)
    alive = {url: ids for url, ids in found.items() if ids is not None}
    if not alive:
        dead = ", ".join(found)
        raise ModelError(f"cannot reach {dead}: no OpenAI-compatible server answered GET /models", _START_HINT)
    for url in found.keys() - alive.keys():
        log.warning("%s does not answer; requests go to the other base URLs", url)
    for url, ids in alive.items():
        if ids and model not in ids:
            # llama.cpp's server answers any model name; vLLM answers only the names it serves.
            log.warning("%s serves %s, not %r; the request may fail", url, ", ".join(ids), model)


class OpenAIGenerator(Generator):
    """Chat completions with n=1 per request, a thread pool of `concurrency`, least-busy URL first."""

    def __init__(self, spec: ModelSpec, concurrency: int | None = None):
        from openai import OpenAI

        self.spec = spec.raw
        self.model, self.urls = openai_endpoint(spec)
        self.concurrency = concurrency or int_option(spec, "concurrency", 4 * len(self.urls), minimum=1)
        self.retries = int_option(spec, "retries", 5)
        timeout = float_option(spec, "timeout", 600.0)
        key = _api_key(spec)
        # The client's own retries are off: ours move a failed request to another URL.
        self._clients = {u: OpenAI(base_url=u, api_key=key, max_retries=0, timeout=timeout) for u in self.urls}
        self._busy = {u: 0 for u in self.urls}
        self._down_until = {u: 0.0 for u in self.urls}
        self._fails = {u: 0 for u in self.urls}  # consecutive failures: each doubles the URL's backoff
        self.served = {u: 0 for u in self.urls}  # answered requests per URL, for logs and balance checks
        self._lock = threading.Lock()
        self._turn = 0

    def fingerprint(self) -> str:
        # The model name only: servers of the same model behind different URLs share cache entries.
        return f"openai:{self.model}"

    def _acquire(self) -> str:
        while True:
            with self._lock:
                now = time.monotonic()
                up = [u for u in self.urls if self._down_until[u] <= now]
                if up:
                    self._turn += 1
                    # Fewest requests in flight; ties rotate so that idle servers all get work.
                    url = min(up, key=lambda u: (self._busy[u], (self.urls.index(u) - self._turn) % len(self.urls)))
                    self._busy[url] += 1
                    return url
                wait_s = min(self._down_until.values()) - now
            time.sleep(wait_s)  # every URL is backing off: wait for the first to come back

    def _release(self, url: str, failed: bool) -> float:
        """Book the outcome; a failure takes the URL out of rotation for an exponential, jittered backoff."""
        with self._lock:
            self._busy[url] -= 1
            if not failed:
                self._fails[url] = 0
                self.served[url] += 1
                return 0.0
            self._fails[url] += 1
            backoff = min(0.5 * 2 ** (self._fails[url] - 1), 16.0) * (0.5 + random.random())
            self._down_until[url] = time.monotonic() + backoff
            return backoff

    def _one(self, request: GenerationRequest) -> Generation:
        import openai

        sampling = request.sampling
        kwargs = dict(
            model=self.model,
            messages=[dict(m) for m in request.messages],
            n=1,  # llama.cpp's server ignores n>1; samples are separate requests with their own seeds
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=request_seed(request),
        )
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            url = self._acquire()
            start = time.perf_counter()
            try:
                response = self._clients[url].chat.completions.create(**kwargs)
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as err:
                # The next attempt goes to another URL at once, or waits for this one's backoff.
                backoff = self._release(url, failed=True)
                last_error = err
                log.warning("%s failed (%s), out of rotation for %.1fs; attempt %d/%d",
                            url, type(err).__name__, backoff, attempt + 1, self.retries + 1)
                continue
            except openai.BadRequestError as err:
                self._release(url, failed=False)
                if any(word in str(err).lower() for word in _CONTEXT_WORDS):
                    # One over-long prompt must not end a whole evaluation: report it as this request's error.
                    log.warning("%s rejected a prompt as too long: %s", url, err)
                    return Generation(text="", finish_reason="error", seconds=time.perf_counter() - start)
                raise ModelError(f"{url} rejected a request for {self.model!r}: {err}", "check the model name and sampling settings") from err
            except openai.NotFoundError as err:
                self._release(url, failed=False)
                raise ModelError(f"{url} does not serve model {self.model!r}: {err}", "use the name the server lists at GET /v1/models") from err
            except openai.APIStatusError as err:
                self._release(url, failed=False)
                raise ModelError(f"{url} answered {err.status_code}: {err}", "check the server's logs and the API key") from err
            self._release(url, failed=False)
            choice = response.choices[0]
            usage = response.usage
            return Generation(
                text=choice.message.content or "",
                finish_reason="length" if choice.finish_reason == "length" else "stop",
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                seconds=time.perf_counter() - start,
            )
        raise ModelError(
            f"no server answered a request for {self.model!r} after {self.retries + 1} attempts "
            f"({', '.join(self.urls)}); last error: {last_error}",
            _START_HINT,
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(requests))))
        try:
            pending: dict[Future, int] = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    results[i] = future.result()  # re-raises a ModelError from a worker here
                    if on_done is not None:
                        on_done(i, results[i])  # on the caller's thread: SQLite connections are per-thread
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
