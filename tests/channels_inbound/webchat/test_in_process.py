"""The widget consumer driven in process through the whole ASGI application (asgiref's
ApplicationCommunicator, which channels.testing.WebsocketCommunicator wraps; see tests/live)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from channels_inbound.webchat import tokens
from tests.channels_inbound.webchat.conftest import SITE, WAIT
from tickets.models import TimelineEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi"), pytest.mark.usefixtures("own_channel_layer")]


class WidgetSocket:
    def __init__(self, key: str, origin: str = SITE):
        from omnicenter.asgi import application

        path = f"/ws/widget/{key}/"
        scope = {
            "type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [(b"host", b"chat.omnicenter.test"), (b"origin", origin.encode())], "subprotocols": [],
            "client": ["203.0.113.9", 50000], "server": ["127.0.0.1", 80],
        }
        self.app = ApplicationCommunicator(application, scope)

    async def connect(self) -> bool:
        await self.app.send_input({"type": "websocket.connect"})
        return (await self.app.receive_output(WAIT))["type"] == "websocket.accept"

    async def send(self, data: dict) -> None:
        await self.app.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive(self, kind: str) -> dict:
        while True:
            output = await self.app.receive_output(WAIT)
            if output["type"] == "websocket.close":
                return {"type": "closed", "code": output.get("code")}
            data = json.loads(output["text"])
            if data["type"] == kind:
                return data

    async def disconnect(self) -> None:
        await self.app.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.app.wait(WAIT)


def test_in_process_the_widget_socket_skips_the_hosts_origin_check_but_keeps_its_own(chat):
    token = tokens.issue(tokens.Visitor(channel_key=chat.channel.key, id=tokens.new_anonymous_id()))

    async def scenario():
        foreign = WidgetSocket(chat.channel.key, origin="https://evil.example.net")
        refused = not await foreign.connect()
        ws = WidgetSocket(chat.channel.key)
        accepted = await ws.connect()
        await ws.send({"type": "auth", "token": token})
        ready = await ws.receive("ready")
        await ws.send({"type": "message", "id": "m-1", "text": "Hi from in process"})
        ack = await ws.receive("ack")
        await ws.disconnect()
        return refused, accepted, ready, ack

    refused, accepted, ready, ack = async_to_sync(scenario)()

    assert refused and accepted
    assert ready["greeting"] == "Hello from the shop!"
    assert ack["message"]["text"] == "Hi from in process"
    assert TimelineEntry.objects.get().text == "Hi from in process"


def test_in_process_a_garbage_first_frame_is_closed_with_4401(chat):
    async def scenario():
        ws = WidgetSocket(chat.channel.key)
        await ws.connect()
        await ws.app.send_input({"type": "websocket.receive", "text": "not json"})
        closed = await ws.receive("closed")
        await ws.app.wait(WAIT)
        return closed

    assert async_to_sync(scenario)()["code"] == 4401
