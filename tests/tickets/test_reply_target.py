"""Where a reply goes: never to another customer, and to the identity the agent chose."""

from __future__ import annotations

import pytest

from tests.factories import EntryFactory, IdentityFactory, TicketFactory, make_channel
from tickets.models import TimelineEntry


@pytest.fixture
def ticket(people, api_channel):
    return TicketFactory(customer=people.customer, team=people.team_a, origin_channel=api_channel.channel)


def reply(api, ticket, **body):
    return api.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"kind": "reply", "text": "Hi", **body}, format="json")


def test_an_identity_of_another_customer_is_refused_with_or_without_a_channel(people, ticket, api_as, api_channel):
    boris_email = people.other_customer.identities.get()
    api = api_as(people.agent_a)

    alone = reply(api, ticket, identity=boris_email.pk)
    with_channel = reply(api, ticket, identity=boris_email.pk, channel=api_channel.channel.key)

    assert alone.status_code == with_channel.status_code == 400
    assert "another" in alone.json()["detail"] or "belong" in alone.json()["detail"]
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_the_identity_the_agent_chose_is_the_one_replied_to(people, ticket, api_as, api_channel):
    email = people.customer.identities.get()
    phone = IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    EntryFactory(ticket=ticket, channel=api_channel.channel, identity=email, author_customer=people.customer)

    response = reply(api_as(people.agent_a), ticket, identity=phone.pk)

    assert response.status_code == 201
    assert response.json()["identity"]["value"] == "+48601234567"


def test_without_a_choice_the_reply_goes_where_the_customer_last_wrote(people, ticket, api_as, api_channel):
    chat, _ = make_channel(name="Chat API", default_team=people.team_a)
    email = people.customer.identities.get()
    EntryFactory(ticket=ticket, channel=api_channel.channel, identity=email, author_customer=people.customer)
    EntryFactory(ticket=ticket, channel=chat, identity=email, author_customer=people.customer)

    response = reply(api_as(people.agent_a), ticket)

    assert response.json()["channel"]["key"] == chat.key


def test_a_switched_off_channel_is_refused_and_skipped(people, ticket, api_as, api_channel):
    off, _ = make_channel(name="Old API")
    off.is_active = False
    off.save(update_fields=["is_active"])
    email = people.customer.identities.get()
    EntryFactory(ticket=ticket, channel=off, identity=email, author_customer=people.customer)
    api = api_as(people.agent_a)

    assert reply(api, ticket, channel=off.key).status_code == 400  # inactive channels are not selectable
    assert reply(api, ticket).json()["channel"]["key"] == api_channel.channel.key
