"""The portal's CSAT survey asked inline in the widget (channels_inbound/webchat/surveys.py), over
the real ASGI server: solving a chat ticket shows the rating to the visitor, whose answer is
recorded; nobody else's socket can answer it, and an offline visitor gets no inline prompt."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache

from customers.models import Identity
from tests.channels_inbound.webchat.conftest import WAIT, frame, new_token, say, signed_in
from tickets import services
from tickets.models import CsatRating, SurveyInvitation, Ticket

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi"),
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"),
]


def test_solving_a_chat_ticket_asks_the_visitor_inline_and_only_that_visitor_can_answer(asgi_server, chat, people):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    other, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    assert say(ws, "c-1", "Is the X200 in stock?")["type"] == "ack"
    ticket = Ticket.objects.get()

    services.ticket_set_status(ticket=ticket, status="solved", by=people.agent_a)

    prompt = frame(ws, "survey")
    invitation = SurveyInvitation.objects.get(ticket=ticket)
    assert prompt["id"] == f"inv-{invitation.pk}" and prompt["scale"] == [1, 5]
    assert f"#{ticket.number}" in prompt["question"]
    assert invitation.outcome == "inline"

    other.send(json.dumps({"type": "survey_answer", "id": prompt["id"], "rating": 1}))
    assert frame(other, "error")["code"] == "bad_request"
    assert not CsatRating.objects.exists()

    ws.send(json.dumps({"type": "survey_answer", "id": prompt["id"], "rating": 5}))
    frame(ws, "survey_thanks")
    rating = CsatRating.objects.get(ticket=ticket)
    assert (rating.score, rating.customer_id) == (5, Identity.objects.get(kind="visitor", value=_visitor_of(ws, chat)).customer_id)
    ws.close()
    other.close()


def _visitor_of(ws, chat) -> str:
    # The first visitor is the one whose message opened the ticket.
    return Ticket.objects.get().entries.filter(identity__kind="visitor").first().identity.value


def test_an_offline_visitor_is_not_asked_inline(asgi_server, chat, people):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    assert say(ws, "c-1", "Thanks, that is all.")["type"] == "ack"
    ws.close()
    ticket = Ticket.objects.get()
    identity = ticket.entries.filter(identity__kind="visitor").first().identity
    from channels_inbound.webchat import services as webchat

    deadline = time.monotonic() + WAIT  # the server notices the closed socket
    while webchat.visitor_is_online(channel_key=chat.channel.key, visitor_id=identity.value) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Presence is a counter with a TTL (a crashed server's count expires); it has run out by now.
    cache.delete(webchat._presence_key(chat.channel.key, identity.value))
    services.ticket_set_status(ticket=ticket, status="solved", by=people.agent_a)

    invitation = SurveyInvitation.objects.get(ticket=ticket)
    assert invitation.outcome != "inline", (invitation.outcome, invitation.error, invitation.channel)
