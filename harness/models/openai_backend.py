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

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models.base import Generator, split_prefill
from tl_eval.harness.models.seeds import request_seed
from tl_eval.harness.models.spec import ModelSpec, float_option, int_option, openai_endpoint
from tl_eval.harness.types import Generation, GenerationRequest

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
    """Chat completions with n=1 per request, a thread pool of `concurrency`, least-busy URL first.

    The health of each base URL is shared by every request: the first failure takes the URL out of
    rotation (one warning), the requests that need it wait while one thread probes it (GET /models) with
    an exponential backoff, and a probe that answers puts it back (one warning). When every URL has failed
    `retries` probes in a row, or none has answered for `down_timeout` seconds, every request fails at once
    with one ModelError; the answers delivered before that are kept (the cache has them).
    """

    def __init__(self, spec: ModelSpec, concurrency: int | None = None):
        from openai import OpenAI, Timeout

        self.spec = spec.raw
        self.model, self.urls = openai_endpoint(spec)
        self.concurrency = concurrency or int_option(spec, "concurrency", 4 * len(self.urls), minimum=1)
        self.retries = int_option(spec, "retries", 5)
        self.timeout = float_option(spec, "timeout", 600.0)
        self.down_timeout = float_option(spec, "down_timeout", 30.0)
        self._api_key = _api_key(spec)
        # The client's own retries are off: ours move a failed request to another URL. A short connect
        # timeout: a host that drops packets must not hold a request for the whole read timeout. openai's own
        # Timeout: openai 3 runs on httpx2, whose clients refuse an httpx.Timeout.
        timeout = Timeout(self.timeout, connect=min(10.0, self.timeout))
        self._clients = {u: OpenAI(base_url=u, api_key=self._api_key, max_retries=0, timeout=timeout)
                         for u in self.urls}
        self._busy = {u: 0 for u in self.urls}
        self._up = {u: True for u in self.urls}
        self._fails = {u: 0 for u in self.urls}  # 1 when it went down, +1 per failed probe since
        self._retry_at = {u: 0.0 for u in self.urls}  # monotonic time of the next probe of a down URL
        self._probing: set[str] = set()
        self._changed_at = {u: 0.0 for u in self.urls}  # monotonic time of the URL's last up/down change
        self._all_down_since: float | None = None
        self._last_error: Exception | None = None
        self._dead: ModelError | None = None
        self.served = {u: 0 for u in self.urls}  # answered requests per URL, for logs and balance checks
        self._cond = threading.Condition()
        self._turn = 0

    def fingerprint(self) -> str:
        # The model name only: servers of the same model behind different URLs share cache entries.
        return f"openai:{self.model}"

    def kernel_facts(self) -> dict:
        return {"backend": "openai", "remote": True}  # the servers' machines are not known from here

    # -- endpoint health, shared by all requests (call with self._cond held) --------------------

    def _backoff(self, fails: int) -> float:
        return min(0.5 * 2 ** (fails - 1), 8.0) * (0.5 + random.random())

    def _mark_failed(self, url: str, err: Exception, probe: bool = False) -> None:
        now = time.monotonic()
        self._last_error = err
        if self._up[url]:
            self._up[url] = False
            self._changed_at[url] = now
            self._fails[url] = 1
            others = "requests go to the other base URLs" if any(self._up.values()) else \
                "requests wait while it is probed"
            log.warning("%s is not answering (%s: %s); %s", url, type(err).__name__, err, others)
        elif probe:
            self._fails[url] += 1
        else:  # one more request that was in flight when the URL went down: the same outage
            return
        self._retry_at[url] = now + self._backoff(self._fails[url])
        if not any(self._up.values()) and self._all_down_since is None:
            self._all_down_since = now
        if all(self._fails[u] > self.retries for u in self.urls):
            self._give_up(f"every base URL still failed after {self.retries + 1} attempts in a row")
        self._cond.notify_all()

    def _mark_up(self, url: str) -> None:
        if not self._up[url]:
            self._up[url] = True
            self._changed_at[url] = time.monotonic()
            log.warning("%s answers again; back in rotation", url)
        self._fails[url] = 0
        self._all_down_since = None
        self._cond.notify_all()

    def _give_up(self, why: str) -> None:
        if self._dead is None:
            self._dead = ModelError(
                f"no server answered for {self.model!r} at {', '.join(self.urls)}: {why}; "
                f"last error: {self._last_error}",
                f"{_START_HINT}; finished generations are cached, so the same command resumes")
        self._cond.notify_all()

    def _acquire(self) -> str:
        """A URL in rotation for one request; waits while none is. Down URLs that are due get a probe."""
        with self._cond:
            while True:
                if self._dead is not None:
                    raise self._dead
                now = time.monotonic()
                for u in self.urls:
                    if not self._up[u] and u not in self._probing and self._retry_at[u] <= now:
                        self._probing.add(u)  # one probe per URL at a time, whatever the number of requests
                        threading.Thread(target=self._probe_and_book, args=(u,), daemon=True,
                                         name="tl-eval-probe").start()
                up = [u for u in self.urls if self._up[u]]
                if up:
                    self._turn += 1
                    # Fewest requests in flight; ties rotate so that idle servers all get work.
                    url = min(up, key=lambda u: (self._busy[u], (self.urls.index(u) - self._turn) % len(self.urls)))
                    self._busy[url] += 1
                    return url
                down_for = now - (self._all_down_since if self._all_down_since is not None else now)
                if down_for >= self.down_timeout:
                    self._give_up(f"none has answered for {down_for:.0f} s")
                    raise self._dead  # type: ignore[misc]
                waits = [self._retry_at[u] - now for u in self.urls if u not in self._probing]
                self._cond.wait(timeout=max(0.01, min([*waits, self.down_timeout - down_for, 1.0])))

    def _probe_and_book(self, url: str) -> None:
        alive, err = self._probe(url)
        with self._cond:
            self._probing.discard(url)
            if alive:
                self._mark_up(url)
            else:
                self._mark_failed(url, err, probe=True)  # type: ignore[arg-type]

    def _probe(self, url: str) -> tuple[bool, Exception | None]:
        try:
            response = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {self._api_key}"},
                                 timeout=min(5.0, self.timeout))
        except httpx.HTTPError as err:
            return False, err
        if response.status_code >= 500:
            return False, RuntimeError(f"GET /models answered {response.status_code}")
        return True, None  # any other answer (even 404 from a server without /models) means it is up

    def _release(self, url: str, sent: float, error: Exception | None = None) -> None:
        """Book the outcome of a request sent at `sent`: a success keeps the URL in rotation, a failure takes
        it out. A request sent before the URL's last change of state tells nothing new (an answer that was
        already on its way when the server went down), so it changes nothing."""
        with self._cond:
            self._busy[url] -= 1
            if error is None:
                self.served[url] += 1
            if sent < self._changed_at[url]:
                return
            if error is None:
                self._mark_up(url)
            else:
                self._mark_failed(url, error)

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
        _, prefill = split_prefill(request.messages)
        if prefill:
            # vLLM's (and SGLang's) chat endpoint continues a trailing assistant message when told to; a server
            # that ignores the fields starts a new turn, where the stop sequence still ends the trace.
            kwargs["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            url = self._acquire()
            start, sent = time.perf_counter(), time.monotonic()
            try:
                response = self._clients[url].chat.completions.create(**kwargs)
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as err:
                # The URL leaves the rotation for every request; this one goes to another URL, or waits.
                self._release(url, sent, err)
                last_error = err
                log.debug("%s failed (%s); attempt %d/%d", url, type(err).__name__, attempt + 1, self.retries + 1)
                continue
            except openai.BadRequestError as err:
                self._release(url, sent)
                if any(word in str(err).lower() for word in _CONTEXT_WORDS):
                    # One over-long prompt must not end a whole evaluation: report it as this request's error.
                    log.warning("%s rejected a prompt as too long: %s", url, err)
                    return Generation(text="", finish_reason="error", seconds=time.perf_counter() - start)
                raise ModelError(f"{url} rejected a request for {self.model!r}: {err}", "check the model name and sampling settings") from err
            except openai.NotFoundError as err:
                self._release(url, sent)
                raise ModelError(f"{url} does not serve model {self.model!r}: {err}", "use the name the server lists at GET /v1/models") from err
            except openai.APIStatusError as err:
                self._release(url, sent)
                raise ModelError(f"{url} answered {err.status_code}: {err}", "check the server's logs and the API key") from err
            self._release(url, sent)
            choice = response.choices[0]
            usage = response.usage
            text = choice.message.content or ""
            if prefill and text.startswith(prefill.strip()):  # a new turn that re-opened the tag itself
                text = text[len(prefill.strip()):]
            return Generation(
                text=text,
                finish_reason="length" if choice.finish_reason == "length" else "stop",
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                seconds=time.perf_counter() - start,
            )
        raise ModelError(
            f"no server answered a request for {self.model!r} after {self.retries + 1} attempts "
            f"({', '.join(self.urls)}); last error: {last_error}",
            f"{_START_HINT}; finished generations are cached, so the same command resumes",
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_done: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        with self._cond:  # a new batch gives URLs that were given up on another round of probes
            if self._dead is not None:
                self._dead = None
                self._all_down_since = None if any(self._up.values()) else time.monotonic()
                self._fails = {u: min(f, 1) for u, f in self._fails.items()}
        error: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(requests))))
        try:
            pending: dict[Future, int] = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        results[i] = future.result()
                    except Exception as err:  # noqa: BLE001 - re-raised once the running requests end
                        if error is None:
                            error = err
                            for other in pending:  # not started yet: never sent
                                other.cancel()
                        continue
                    if on_done is not None:
                        on_done(i, results[i])  # on the caller's thread: SQLite connections are per-thread
            if error is not None:
                # Raised only now, so that every answer that arrived meanwhile reached on_done (the cache).
                raise error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
