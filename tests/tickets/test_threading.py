"""Threading inbound messages into tickets (DESIGN.md step 7), through the real spine."""

from __future__ import annotations

import pytest

from channels_inbound.base import NormalizedMessage
from channels_inbound.services import message_ingest
from customers import identities
from customers.models import Identity
from tests.conftest import message
from tests.factories import TeamFactory, UserFactory, make_channel
from tickets import services
from tickets.models import Ticket, TimelineEntry

ANNA = "anna@example.pl"
BORIS = "boris@example.ru"


def say(channel, msg_id: str, text: str = "Hello", *, thread: str | None = None, email: str = ANNA,
        auto_reply: bool = False) -> TimelineEntry:
    """One inbound message from `email`, as an adapter hands it to the spine."""
    return message_ingest(channel=channel, message=NormalizedMessage(
        provider_message_id=msg_id, sender=[identities.claim(Identity.Kind.EMAIL, email)], text=text,
        thread_keys=[thread] if thread else [], is_auto_reply=auto_reply,
    ))


@pytest.fixture
def channel(api_channel):
    return api_channel.channel


@pytest.fixture
def staff(people):
    return people.supervisor


def test_messages_with_the_same_thread_land_on_one_ticket(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_inbound(api_channel, {**message("m-1", "My order is late"), "thread": "order-77"})
        post_inbound(api_channel, {**message("m-2", "Any news?"), "thread": "order-77"})
    ticket = Ticket.objects.get()
    assert list(ticket.entries.values_list("text", flat=True)) == ["My order is late", "Any news?"]
    assert ticket.subject == "My order is late"


def test_a_new_thread_opens_a_new_ticket(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_inbound(api_channel, {**message("m-1", "About order 77"), "thread": "order-77"})
        post_inbound(api_channel, {**message("m-2", "About order 78"), "thread": "order-78"})
    tickets = Ticket.objects.order_by("pk")
    assert [t.subject for t in tickets] == ["About order 77", "About order 78"]
    assert {t.customer for t in tickets} == {people.customer}


def test_without_thread_the_message_joins_the_customers_latest_ticket_on_that_channel(people, channel):
    first = say(channel, "m-1", "first", thread="a").ticket
    latest = say(channel, "m-2", "second", thread="b").ticket
    other_channel, _secrets = make_channel(name="Partner API", default_team=people.team_a)
    elsewhere = say(other_channel, "m-3", "on another channel").ticket

    entry = say(channel, "m-4", "no thread given")

    assert len({first.pk, latest.pk, elsewhere.pk}) == 3
    assert entry.ticket_id == latest.pk
    assert say(other_channel, "m-5", "again, no thread").ticket_id == elsewhere.pk


def test_a_customer_message_reopens_a_solved_ticket(people, channel, staff):
    ticket = say(channel, "m-1", thread="t").ticket
    services.ticket_set_status(ticket=ticket, status=Ticket.Status.SOLVED, by=staff)

    entry = say(channel, "m-2", "It is broken again", thread="t")

    ticket.refresh_from_db()
    assert entry.ticket_id == ticket.pk
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.solved_at is None
    reopened = ticket.entries.filter(kind=TimelineEntry.Kind.EVENT, data__action="reopened").get()
    assert reopened.data == {"action": "reopened", "from": "solved", "to": "open"}
    assert reopened.author_user is None


def test_an_auto_reply_does_not_reopen_a_solved_ticket(people, channel, staff):
    ticket = say(channel, "m-1", thread="t").ticket
    services.ticket_set_status(ticket=ticket, status=Ticket.Status.SOLVED, by=staff)

    entry = say(channel, "m-2", "I am out of office until Monday", thread="t", auto_reply=True)

    ticket.refresh_from_db()
    assert entry.ticket_id == ticket.pk
    assert entry.is_auto_reply is True
    assert ticket.status == Ticket.Status.SOLVED
    assert ticket.solved_at is not None
    assert not ticket.entries.filter(data__action="reopened").exists()


def test_a_customer_reply_moves_a_pending_ticket_back_to_open(people, channel, staff):
    ticket = say(channel, "m-1", thread="t").ticket
    services.ticket_set_status(ticket=ticket, status=Ticket.Status.PENDING, by=staff)

    say(channel, "m-2", "Here is the information you asked for", thread="t")

    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN


def test_an_auto_reply_leaves_a_pending_ticket_pending(people, channel, staff):
    ticket = say(channel, "m-1", thread="t").ticket
    services.ticket_set_status(ticket=ticket, status=Ticket.Status.PENDING, by=staff)

    say(channel, "m-2", "Automatic reply", thread="t", auto_reply=True)

    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.PENDING


@pytest.mark.parametrize("thread", ["t", None])
def test_a_message_on_a_closed_ticket_opens_a_follow_up_ticket(people, channel, staff, thread):
    old = say(channel, "m-1", "Original question", thread="t").ticket
    services.ticket_set_status(ticket=old, status=Ticket.Status.CLOSED, by=staff)

    entry = say(channel, "m-2", "One more thing", thread=thread)

    old.refresh_from_db()
    new = entry.ticket
    assert new.pk != old.pk
    assert new.follow_up_of_id == old.pk
    assert new.customer == people.customer
    assert new.status == Ticket.Status.NEW
    assert old.status == Ticket.Status.CLOSED
    assert list(old.entries.filter(kind=TimelineEntry.Kind.MESSAGE).values_list("text", flat=True)) == ["Original question"]


def test_further_messages_on_the_thread_of_a_closed_ticket_join_its_follow_up(people, channel, staff):
    old = say(channel, "m-1", "Original question", thread="t").ticket
    services.ticket_set_status(ticket=old, status=Ticket.Status.CLOSED, by=staff)
    follow_up = say(channel, "m-2", "One more thing", thread="t").ticket

    later = say(channel, "m-3", "And another", thread="t")

    assert later.ticket_id == follow_up.pk
    assert Ticket.objects.filter(follow_up_of=old).count() == 1


def test_a_thread_key_of_another_customers_ticket_is_not_used(people, channel):
    annas = say(channel, "m-1", "Anna's private question", thread="order-77").ticket

    intruder = say(channel, "m-2", "Let me in", thread="order-77", email=BORIS)

    assert intruder.ticket_id != annas.pk
    assert intruder.ticket.customer == people.other_customer
    assert list(annas.entries.values_list("text", flat=True)) == ["Anna's private question"]

    # The intruder's own conversation on that thread id continues on the intruder's ticket.
    again = say(channel, "m-3", "Still me", thread="order-77", email=BORIS)
    assert again.ticket_id == intruder.ticket_id
    assert say(channel, "m-4", "Anna again", thread="order-77").ticket_id == annas.pk


def test_without_thread_another_customers_ticket_on_the_channel_is_not_used(people, channel):
    annas = say(channel, "m-1", "Anna's question").ticket

    boris_entry = say(channel, "m-2", "Boris's question", email=BORIS)

    assert boris_entry.ticket_id != annas.pk
    assert boris_entry.ticket.customer == people.other_customer


def test_the_ticket_team_comes_from_the_channels_default_team(people):
    team_c = TeamFactory(name="Returns")
    returns_channel, _ = make_channel(name="Returns API", default_team=team_c)
    no_team_channel, _ = make_channel(name="Unrouted API")

    assert say(returns_channel, "m-1").ticket.team == team_c
    assert say(no_team_channel, "m-2").ticket.team is None


def test_a_follow_up_message_keeps_the_ticket_team_even_after_a_move(people, channel, staff):
    ticket = say(channel, "m-1", thread="t").ticket
    services.ticket_set_team(ticket=ticket, team=people.team_b, by=staff)

    say(channel, "m-2", thread="t")

    ticket.refresh_from_db()
    assert ticket.team == people.team_b


def test_the_same_provider_message_id_twice_gives_one_entry(people, channel):
    first = say(channel, "m-1", "Hello", thread="t")
    version = Ticket.objects.get().version

    second = say(channel, "m-1", "Hello", thread="t")

    assert second.pk == first.pk
    assert TimelineEntry.objects.filter(kind=TimelineEntry.Kind.MESSAGE).count() == 1
    assert Ticket.objects.get().version == version


def test_the_same_provider_message_id_on_two_channels_gives_two_entries(people, channel):
    other_channel, _ = make_channel(name="Partner API")

    say(channel, "m-1")
    say(other_channel, "m-1")

    assert TimelineEntry.objects.count() == 2


def test_an_inbound_message_bumps_the_version_and_last_message_time(people, channel):
    ticket = say(channel, "m-1", thread="t").ticket
    before = Ticket.objects.get(pk=ticket.pk)

    say(channel, "m-2", thread="t")

    after = Ticket.objects.get(pk=ticket.pk)
    assert after.version == before.version + 1
    assert after.last_message_at > before.last_message_at


def test_an_inbound_message_is_recorded_with_its_sender_identity_and_channel(people, channel):
    entry = say(channel, "m-1", "Hi there")

    assert entry.direction == TimelineEntry.Direction.INBOUND
    assert entry.channel == channel
    assert entry.identity.value == ANNA
    assert entry.author_customer == people.customer
    assert entry.delivery_status == TimelineEntry.Delivery.RECEIVED


def test_a_message_for_an_assigned_ticket_keeps_the_assignee(people, channel, staff):
    agent = UserFactory(username="agent_c", role="agent", teams=[people.team_a])
    ticket = say(channel, "m-1", thread="t").ticket
    services.ticket_assign(ticket=ticket, agent=agent, by=staff)

    say(channel, "m-2", thread="t")

    ticket.refresh_from_db()
    assert ticket.assignee == agent


def test_a_quoted_ticket_number_or_reply_token_threads_only_for_the_same_customer(people, channel):
    annas = say(channel, "m-1", "Anna's question", thread="conv-1").ticket

    by_number = say(channel, "m-2", "About my ticket", thread=f"ticket:{annas.pk}")
    by_token = say(channel, "m-3", "Replying by mail", thread=f"token:{annas.public_id.hex}")
    boris_number = say(channel, "m-4", "Guessing a number", thread=f"ticket:{annas.pk}", email=BORIS)
    boris_token = say(channel, "m-5", "Stolen token", thread=f"token:{annas.public_id.hex}", email=BORIS)

    assert by_number.ticket_id == by_token.ticket_id == annas.pk
    assert boris_number.ticket_id != annas.pk and boris_token.ticket_id != annas.pk
    assert list(annas.entries.values_list("text", flat=True)) == ["Anna's question", "About my ticket", "Replying by mail"]


def test_a_conversation_key_wins_over_a_quoted_number_of_another_ticket(people, channel):
    first = say(channel, "m-1", "First", thread="conv-1").ticket
    second = say(channel, "m-2", "Second", thread="conv-2").ticket

    entry = message_ingest(channel=channel, message=NormalizedMessage(
        provider_message_id="m-3", sender=[identities.claim(Identity.Kind.EMAIL, ANNA)], text="Re",
        thread_keys=["conv-2", f"ticket:{first.pk}"],
    ))

    assert entry.ticket_id == second.pk


def test_keys_recorded_after_a_send_thread_the_answer(people, channel):
    from tickets.services import ticket_record_thread_keys

    ticket = say(channel, "m-1", "Question").ticket
    ticket_record_thread_keys(ticket=ticket, channel=channel, keys=["msgid:our-reply@omnicenter.example"])

    answer = say(channel, "m-2", "Answer to your reply", thread="msgid:our-reply@omnicenter.example")
    assert answer.ticket_id == ticket.pk
