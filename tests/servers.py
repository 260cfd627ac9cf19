"""Real servers for tests that need real sockets (a pytest plugin, see tests/conftest.py).

pytest-django's live_server is WSGI and has no websockets, so `asgi_server` runs uvicorn serving
`omnicenter.asgi:application` (HTTP and websockets) in a background thread of the test process,
against the test database. One server per session (per xdist worker): tests that use it are marked
`xdist_group("asgi")` so that `--dist loadgroup` keeps them on one worker, and
`django_db(transaction=True)` so that their data is committed and visible to the server's threads.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

AGENT_SOCKET = "/ws/agent/"
STARTUP_LIMIT = 30.0  # seconds; a bound on waiting, not an assertion on speed


def session_key_for(user) -> str:
    """A signed-in session of `user`, as a browser would hold it after the login form."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@dataclass
class AsgiServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def post_json(self, path: str, payload: Any, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, content=json.dumps(payload), timeout=30,
                          headers={"Content-Type": "application/json", **(headers or {})})

    def post_inbound(self, api, payload: dict) -> httpx.Response:
        """POST to an `api` channel's inbound URL the way an integrator does (tests.conftest.ApiChannel)."""
        return self.post_json(api.url, payload, headers={"Authorization": f"Bearer {api.secret}"})

    def agent_socket(self, session_key: str | None = None, *, origin: str | None = None) -> ClientConnection:
        """A websocket client on /ws/agent/, signed in with `session_key` when given."""
        from django.conf import settings

        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}"} if session_key else {}
        return connect(
            f"ws://{self.host}:{self.port}{AGENT_SOCKET}", origin=origin or self.url,
            additional_headers=headers, open_timeout=10, close_timeout=5,
        )


def _close_server_connections(django_db_blocker) -> None:
    """Close the database connections the server's threads opened, so the test database can be dropped."""
    from asgiref.sync import SyncToAsync
    from django.db import connection, connections

    # Consumers run their database work on asgiref's process-wide thread-sensitive executor.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    # Request threads end with their request and leave their connection to the garbage collector;
    # whatever is still open now belongs to a finished thread of this session.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    """uvicorn serving the ASGI application on a free port of 127.0.0.1, stopped at the session's end."""
    import uvicorn

    from omnicenter.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    # log_config=None: uvicorn must not reconfigure the test process's logging.
    config = uvicorn.Config(application, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="asgi-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_LIMIT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the ASGI test server did not start")
        time.sleep(0.01)
    try:
        yield AsgiServer(host=host, port=port)
    finally:
        server.should_exit = True
        thread.join(STARTUP_LIMIT)
        sock.close()
        _close_server_connections(django_db_blocker)
        if thread.is_alive():
            raise RuntimeError("the ASGI test server did not stop")
