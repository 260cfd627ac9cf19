"""Replies to a chat visitor who left, on the production path: a real Celery worker (through Redis)
delivers the agent's replies, waits out the batch delay, and sends one email over real SMTP."""

from __future__ import annotations

import time

import pytest

from channels_inbound.webchat import services, tokens
from tests.factories import make_channel
from tickets.models import TimelineEntry
from tickets.services import ticket_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

WAIT = 30  # seconds a worker may take; a bound on waiting, not a speed requirement


def wait_for(condition) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_two_quick_replies_to_a_visitor_who_left_arrive_in_one_email(real_worker, people, smtp_server, settings):
    settings.WEBCHAT_OFFLINE_EMAIL_DELAY = 3
    chat, _ = make_channel(kind="webchat", name="Shop chat", default_team=people.team_a,
                           settings_data={"allowed_origins": ["https://shop.example.com"], "team_name": "Shop team",
                                          "prechat": {"email": "optional"}})
    smtp_server.email_channel(people.team_a)
    visitor = tokens.Visitor(channel_key=chat.key, id=tokens.new_anonymous_id())
    services.visitor_message_post(channel=chat, visitor=visitor, client_id="m-1", text="Is it in stock?",
                                  profile={"email": "left@example.net"}, page="https://shop.example.com/p/1")
    ticket = services.visitor_ticket(visitor)

    first = ticket_reply(ticket=ticket, by=people.agent_a, text="Let me check the warehouse.")
    second = ticket_reply(ticket=ticket, by=people.agent_a, text="Yes, 3 left.")

    assert wait_for(lambda: len(smtp_server.messages) >= 1)
    event = ticket.entries.get(kind=TimelineEntry.Kind.EVENT, data__action="webchat_replies_emailed")
    assert event.data["entries"] == [first.pk, second.pk]
    [mail] = smtp_server.messages
    text = mail.message().get_body(preferencelist=("plain",)).get_content()
    assert "Let me check the warehouse." in text and "Yes, 3 left." in text
    assert "https://shop.example.com/p/1#omnicenter-chat" in text
    assert wait_for(lambda: TimelineEntry.objects.get(pk=event.pk).data["state"] == "sent")
