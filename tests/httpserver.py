"""A local HTTP server that stands in for a provider or an integrator (STYLE.md rule 19).

`http_stub` starts a threading `http.server` on 127.0.0.1 with a free port, records every request
(method, path, headers, body) and answers with a configurable status, body and delay. It is
registered for the whole suite by `pytest_plugins` in tests/conftest.py.

    def test_something(http_stub):
        http_stub.respond(status=201, json={"id": "p-1"})
        ... code under test POSTs to http_stub.url("/hook") ...
        assert http_stub.requests[0].json()["text"] == "hi"
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return jsonlib.loads(self.body)

    def header(self, name: str, default: str = "") -> str:
        """Header lookup regardless of case, as HTTP defines it."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class HttpStub:
    """The recorded requests and the answer the next requests get."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.reply = Reply()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- configuration -------------------------------------------------------------------------
    def respond(
        self, *, status: int = 200, body: bytes | str | None = None, json=None, delay: float = 0.0,
        content_type: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        """Set the answer for the following requests; `json` wins over `body`."""
        if json is not None:
            payload, default_type = jsonlib.dumps(json).encode(), "application/json"
        elif body is not None:
            payload = body.encode() if isinstance(body, str) else body
            default_type = "text/plain; charset=utf-8"
        else:
            payload, default_type = b"{}", "application/json"
        with self._lock:
            self.reply = Reply(
                status=status, body=payload, content_type=content_type or default_type, delay=delay,
                headers=dict(headers or {}),
            )

    # --- addresses -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "the stub is not running"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> HttpStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.requests.append(RecordedRequest(
                        method=self.command, path=self.path, headers=dict(self.headers.items()), body=body,
                    ))
                    reply = stub.reply
                if reply.delay and stub._stopping.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up waiting (a timeout test); nothing left to answer.
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@pytest.fixture
def http_stub() -> Iterator[HttpStub]:
    """A running local HTTP server; answers 200 `{}` until told otherwise with `respond()`."""
    stub = HttpStub().start()
    try:
        yield stub
    finally:
        stub.stop()
