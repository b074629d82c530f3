"""The openai backend when servers die: shared endpoint health, one warning per change, a fast failure.

Only 127.0.0.1 is contacted: a tiny OpenAI-compatible server in a thread, and closed ports.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tl_eval.harness.errors import ModelError
from tl_eval.harness.models import load_generator
from tl_eval.harness.types import GenerationRequest, SamplingParams

LOGGER = "tl_eval.harness.models.openai_backend"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"  # nothing listens once it is closed


class TinyServer:
    """Answers GET /v1/models and POST /v1/chat/completions; after `answers` completions it is dead: every
    later connection is dropped without an answer, as a crashed server behind a proxy would do. (Closing
    the socket instead races with the answers still being sent.)"""

    def __init__(self, answers: int, port: int = 0):
        self.left = answers
        self.answered = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, obj):
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drop(self):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def do_GET(self):
                if server.left <= 0:
                    return self._drop()
                self._send({"object": "list", "data": [{"id": "tiny", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    alive = server.left > 0
                    server.left -= 1
                if not alive:
                    return self._drop()
                time.sleep(0.05)
                self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "tiny",
                            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                "role": "assistant", "content": body["messages"][-1]["content"].upper()}}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                with server.lock:
                    server.answered += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _requests(n: int) -> list[GenerationRequest]:
    return [GenerationRequest(({"role": "user", "content": f"q{i}"},), SamplingParams(max_tokens=4)) for i in range(n)]


def _warnings(caplog, url: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING
            and url in r.getMessage()]


def test_a_server_that_dies_mid_run_fails_fast_with_one_warning_and_keeps_what_finished(caplog):
    server = TinyServer(answers=3)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    done = {}
    with load_generator(f"openai:tiny@{server.url}?concurrency=4&retries=3") as gen:
        start = time.monotonic()
        with pytest.raises(ModelError) as info:
            gen.generate(_requests(16), on_done=lambda i, g: done.update({i: g.text}))
        elapsed = time.monotonic() - start
    assert elapsed < 30
    assert "no server answered" in info.value.problem and server.url in info.value.problem
    assert "resumes" in info.value.fix
    assert len(done) == server.answered == 3  # every answer that came reached on_done (the cache)
    assert all(text == f"Q{i}" for i, text in done.items())
    warned = _warnings(caplog, server.url)
    assert len(warned) == 1 and "not answering" in warned[0], warned  # not one per request and retry
    server.stop()


@pytest.mark.slow  # about 15 s: the default backoff of five probes
def test_every_endpoint_down_fails_within_30_s_with_the_default_settings(caplog):
    dead = [_closed_port_url(), _closed_port_url()]
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with load_generator(f"openai:tiny@{','.join(dead)}") as gen:
        start = time.monotonic()
        with pytest.raises(ModelError, match="no server answered"):
            gen.generate(_requests(12))
        elapsed = time.monotonic() - start
    assert elapsed < 30, elapsed
    for url in dead:
        assert len(_warnings(caplog, url)) == 1


def test_down_timeout_bounds_the_wait(caplog):
    with load_generator(f"openai:tiny@{_closed_port_url()}?retries=100&down_timeout=2") as gen:
        start = time.monotonic()
        with pytest.raises(ModelError, match="none has answered for 2 s"):
            gen.generate(_requests(3))
    assert time.monotonic() - start < 10


def test_a_url_that_comes_back_returns_to_rotation(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    live = TinyServer(answers=1000)
    later = _closed_port_url()  # refuses now; a server starts on its port below
    with load_generator(f"openai:tiny@{later},{live.url}?concurrency=2") as gen:
        assert [g.text for g in gen.generate(_requests(4))] == ["Q0", "Q1", "Q2", "Q3"]
        assert len(_warnings(caplog, later)) == 1  # went down once; the requests moved to the live URL
        back = TinyServer(answers=1000, port=int(later.rsplit(":", 1)[1].split("/")[0]))
        deadline = time.monotonic() + 20
        while not gen.served[later] and time.monotonic() < deadline:
            gen.generate(_requests(4))  # requests trigger the due probes of down URLs
            time.sleep(0.2)
        assert gen.served[later] > 0
    messages = _warnings(caplog, later)
    assert len(messages) == 2 and "answers again" in messages[1], messages
    live.stop()
    back.stop()
