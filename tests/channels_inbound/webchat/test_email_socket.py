"""Email from the web chat over the real widget socket (uvicorn, a real websocket client, real SMTP):
the transcript and code frames, and presence deciding whether a reply is emailed."""

from __future__ import annotations

import json
import re
import time

import pytest

from channels_inbound.webchat import services, tokens
from tests.channels_inbound.webchat.conftest import WAIT, agent_message, new_token, say, signed_in
from tickets.models import TimelineEntry
from tickets.services import ticket_reply

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi"),
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"),
]


@pytest.fixture
def mail_channel(people, smtp_server):
    return smtp_server.email_channel(people.team_a)


def wait_for(condition, timeout: float = WAIT) -> bool:
    """Poll until `condition()` holds; a bound on waiting, not a speed requirement."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def answer(ws) -> dict:
    while True:
        data = json.loads(ws.recv(timeout=WAIT))
        if data.get("type") in ("transcript_queued", "email_code_sent", "email_verified", "error"):
            return data


def test_transcript_and_email_confirmation_over_the_socket(asgi_server, chat, people, mail_channel, smtp_server):
    chat.channel.settings = {**chat.channel.settings, "email_offline_replies": False}
    chat.channel.save(update_fields=["settings"])
    token = new_token(asgi_server, chat.channel)
    ws, ready = signed_in(asgi_server, chat.channel, token)
    assert ready["visitor"]["email"] == ""
    assert say(ws, "m-1", "Hello", profile={"email": "sock@example.net"})["type"] == "ack"

    ws.send(json.dumps({"type": "transcript", "id": "t-1", "email": "sock@example.net", "tz": "Europe/Oslo"}))
    assert answer(ws) == {"type": "transcript_queued", "id": "t-1", "email": "sock@example.net"}
    assert wait_for(lambda: len(smtp_server.messages) == 1)
    assert "Hello" in smtp_server.messages[0].message().get_body(preferencelist=("plain",)).get_content()

    ws.send(json.dumps({"type": "email_code", "id": "c-1", "email": "sock@example.net"}))
    assert answer(ws)["type"] == "email_code_sent"
    assert wait_for(lambda: len(smtp_server.messages) == 2)
    code = re.search(r"\b(\d{6})\b", smtp_server.messages[1].message().get_body(preferencelist=("plain",)).get_content()).group(1)
    ws.send(json.dumps({"type": "email_confirm", "id": "v-1", "email": "sock@example.net", "code": "x" + code[:3]}))
    wrong = answer(ws)
    assert (wrong["type"], wrong["code"], wrong["ref"]) == ("error", "code_wrong", "v-1")
    ws.send(json.dumps({"type": "email_confirm", "id": "v-2", "email": "sock@example.net", "code": code}))
    verified = answer(ws)
    assert verified["type"] == "email_verified" and verified["visitor"]["email_verified"] is True

    _ws2, ready_again = signed_in(asgi_server, chat.channel, token)
    assert ready_again["visitor"] == {"verified": True, "known": True, "email": "sock@example.net", "email_verified": True}


def test_a_reply_is_emailed_only_once_the_visitors_socket_is_gone(asgi_server, chat, people, mail_channel, smtp_server):
    token = new_token(asgi_server, chat.channel)
    visitor = tokens.read(token, channel_key=chat.channel.key)
    ws, _ready = signed_in(asgi_server, chat.channel, token)
    assert say(ws, "m-1", "Anyone there?", profile={"email": "gone@example.net"})["type"] == "ack"
    ticket = services.visitor_ticket(visitor)

    first = ticket_reply(ticket=ticket, by=people.agent_a, text="Yes, one moment")
    pushed = agent_message(ws)
    assert pushed["text"] == "Yes, one moment"
    ws.send(json.dumps({"type": "read", "ids": [pushed["id"]]}))  # as the open widget does
    assert wait_for(lambda: TimelineEntry.objects.get(pk=first.pk).delivery_status == TimelineEntry.Delivery.READ)
    assert smtp_server.messages == []  # connected: the widget shows it
    ws.close()
    assert wait_for(lambda: not services.visitor_is_online(channel_key=chat.channel.key, visitor_id=visitor.id))

    ticket_reply(ticket=ticket, by=people.agent_a, text="Here is the answer you waited for")

    assert wait_for(lambda: len(smtp_server.messages) == 1)
    text = smtp_server.messages[0].message().get_body(preferencelist=("plain",)).get_content()
    assert "Here is the answer you waited for" in text and "Yes, one moment" not in text
    assert ticket.entries.filter(kind=TimelineEntry.Kind.EVENT, data__action="webchat_replies_emailed").count() == 1
