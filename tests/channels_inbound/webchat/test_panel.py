"""The web chat panel in the ticket sidebar."""

from __future__ import annotations

import pytest

from channels_inbound.base import NormalizedMessage
from channels_inbound.services import message_ingest
from channels_inbound.webchat.adapter import visitor_claim
from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


def test_a_chat_ticket_shows_the_chat_panel_and_an_email_ticket_does_not(client, chat, people):
    entry = message_ingest(channel=chat.channel, message=NormalizedMessage(
        provider_message_id="anon:1:c1", sender=[visitor_claim(chat.channel, "anon:1")], text="hello"))
    other = TicketFactory(customer=people.customer, team=people.team_a)
    client.force_login(people.agent_a)

    chat_page = client.get(f"/app/tickets/{entry.ticket_id}/").content.decode()
    other_page = client.get(f"/app/tickets/{other.pk}/").content.decode()

    assert "Anonymous visitor: details they typed are unverified." in chat_page
    assert f'data-typing-url="/app/webchat/tickets/{entry.ticket_id}/typing/"' in chat_page
    assert "data-webchat-typing" not in other_page


def test_a_site_verified_visitor_is_shown_as_such(client, chat, people):
    entry = message_ingest(channel=chat.channel, message=NormalizedMessage(
        provider_message_id="user:42:c1", sender=[visitor_claim(chat.channel, "user:42")], text="hello"))
    client.force_login(people.agent_a)

    page = client.get(f"/app/tickets/{entry.ticket_id}/").content.decode()

    assert "Signed in on the site as user 42 (verified by the site)." in page
