"""Web chat fixtures: a webchat channel, visitor tokens from the real session endpoint, and widget
sockets on the real ASGI server (tests/servers.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.factories import make_channel

SITE = "https://shop.example.com"
WAIT = 10.0  # seconds a frame may take to arrive; a bound on waiting, not a speed requirement


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in Redis for a minute: earlier tests from the same address must not
    count against this one."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match="*webchat-rate:*"):
        client.delete(key)


_open_sockets: list[ClientConnection] = []


@pytest.fixture(autouse=True)
def _close_sockets():
    """Close every widget socket a test opened: a server-side consumer left waiting on the channel
    layer in uvicorn's loop would block in-process (communicator) tests on their own loop."""
    yield
    opened = list(_open_sockets)
    _open_sockets.clear()
    for ws in opened:
        ws.close()
    if opened:
        time.sleep(0.3)  # the server's consumers finish their disconnect


@dataclass
class Chat:
    channel: object
    identity_secret: str


@pytest.fixture
def chat(people) -> Chat:
    channel, generated = make_channel(
        kind="webchat", name="Shop chat", default_team=people.team_a,
        settings_data={"allowed_origins": [SITE], "greeting": "Hello from the shop!",
                       "greeting_returning": "Good to see you again, {name}!",
                       "prechat": {"name": "optional", "email": "optional", "phone": "optional"}},
    )
    return Chat(channel=channel, identity_secret=generated["identity_secret"])


def new_token(server, channel, *, origin: str = SITE, **body) -> str:
    response = httpx.post(f"{server.url}/widget/{channel.key}/session", content=json.dumps(body),
                          headers={"Origin": origin, "Content-Type": "application/json"}, timeout=WAIT)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def widget_socket(server, channel, *, origin: str = SITE) -> ClientConnection:
    ws = connect(f"ws://{server.host}:{server.port}/ws/widget/{channel.key}/", origin=origin,
                 open_timeout=WAIT, close_timeout=5)
    _open_sockets.append(ws)
    return ws


def frame(ws: ClientConnection, kind: str, timeout: float = WAIT) -> dict:
    """The next frame of `kind`, skipping others (typing hints, echoes of our own messages)."""
    while True:
        data = json.loads(ws.recv(timeout=timeout))
        if data.get("type") == kind:
            return data


def agent_message(ws: ClientConnection, timeout: float = WAIT) -> dict:
    """The next message frame from an agent (the echoes of the visitor's own messages skipped)."""
    while True:
        data = frame(ws, "message", timeout)["message"]
        if data["from"] == "agent":
            return data


def signed_in(server, channel, token: str, *, after: str = "") -> tuple[ClientConnection, dict]:
    ws = widget_socket(server, channel)
    ws.send(json.dumps({"type": "auth", "token": token, "after": after}))
    return ws, frame(ws, "ready")


def say(ws: ClientConnection, client_id: str, text: str, **extra) -> dict:
    ws.send(json.dumps({"type": "message", "id": client_id, "text": text, **extra}))
    while True:
        data = json.loads(ws.recv(timeout=WAIT))
        if data.get("type") in ("ack", "error"):
            return data
