"""Portal fixtures: an email channel on the test SMTP server, tickets of two customers with every
kind of timeline entry, and signing a customer in the way a browser does (link from the mail)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.core import mail
from django.core.cache import cache

from tests.factories import EntryFactory, IdentityFactory, TicketFactory
from tickets.attachments import attachment_store
from tickets.models import TimelineEntry

LINK_RE = re.compile(r"https?://\S+/portal/sign-in/link/[\w-]+/")


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    # Rate-limit counters live in this run's own Redis database (OC_REDIS_DB_BASE).
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def email_channel(people, smtp_server):
    return smtp_server.email_channel(people.team_a, name="Obsługa klienta", address="support@example.test")


@dataclass
class Conversation:
    ticket: object
    inbound: object
    reply: object
    note: object
    event: object
    public_file: object
    note_file: object


def conversation(customer, *, channel=None, team=None, agent=None, subject="Parcel lost", identity=None) -> Conversation:
    ticket = TicketFactory(customer=customer, subject=subject, origin_channel=channel, team=team, assignee=agent)
    identity = identity or customer.identities.first()
    inbound = EntryFactory(ticket=ticket, channel=channel, identity=identity, author_customer=customer,
                           text=f"{subject}: where is it?", delivery_status="received")
    reply = EntryFactory(ticket=ticket, channel=channel, identity=identity, direction="out", author_user=agent,
                         text=f"{subject}: we are checking.", delivery_status="sent")
    note = EntryFactory(ticket=ticket, kind=TimelineEntry.Kind.NOTE, direction="", author_user=agent,
                        text=f"SECRET NOTE about {subject}")
    event = EntryFactory(ticket=ticket, kind=TimelineEntry.Kind.EVENT, direction="", text="",
                         data={"action": "priority", "from": "normal", "to": "high"})
    public_file = attachment_store(entry=inbound, filename="receipt.txt", data=f"receipt of {subject}".encode())
    note_file = attachment_store(entry=note, filename="internal.txt", data=b"internal only")
    return Conversation(ticket, inbound, reply, note, event, public_file, note_file)


@pytest.fixture
def anna(people, email_channel):
    return conversation(people.customer, channel=email_channel, team=people.team_a, agent=people.agent_a,
                        subject="Anna's parcel")


@pytest.fixture
def boris(people, email_channel):
    return conversation(people.other_customer, channel=email_channel, team=people.team_a, agent=people.agent_a,
                        subject="Boris's invoice")


def link_from(text: str) -> str:
    match = LINK_RE.search(text)
    assert match, text
    return match.group(0)


@pytest.fixture
def sign_in(django_capture_on_commit_callbacks, smtp_server):
    """Sign `client` in as the owner of `address` through the real flow: request a link, read it
    from the mail that went out (SMTP server, or Django's mailer without an email channel), POST it."""

    def do(client, address: str) -> None:
        before_smtp, before_local = len(smtp_server.messages), len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/portal/sign-in/", {"address": address})
        assert response.status_code == 200
        if len(smtp_server.messages) > before_smtp:
            body = smtp_server.messages[-1].message().get_body(("plain",)).get_content()
        else:
            assert len(mail.outbox) > before_local, "no sign-in mail went out"
            body = mail.outbox[-1].body
        path = link_from(body).split("://", 1)[1].split("/", 1)[1]
        response = client.post("/" + path)
        assert response.status_code == 302, response.content[:500]

    return do


@pytest.fixture
def second_email(people):
    return IdentityFactory(customer=people.customer, kind="email", value="anna.work@example.pl")
