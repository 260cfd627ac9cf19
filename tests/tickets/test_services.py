"""Ticket services: status, priority, team, assignment, tags, replies, and who hears about it live."""

from __future__ import annotations

import pytest
from django.db import transaction

from channels_inbound.base import NormalizedMessage
from channels_inbound.services import message_ingest
from customers import identities
from customers.models import Identity
from omnicenter import events
from omnicenter.errors import DomainError, NotAllowed
from tests.factories import EntryFactory, IdentityFactory, TicketFactory, UserFactory, make_channel
from tests.layers import Listener
from tickets import services
from tickets.models import Tag, Ticket, TimelineEntry
from tickets.services import NoReplyChannel, TicketClosed

S = Ticket.Status


@pytest.fixture
def ticket(people, api_channel):
    """Anna's ticket on the team A api channel, opened by her first message."""
    entry = message_ingest(channel=api_channel.channel, message=NormalizedMessage(
        provider_message_id="m-1", sender=[identities.claim(Identity.Kind.EMAIL, "anna@example.pl")],
        text="Where is my order?",
    ))
    return entry.ticket


def events_of(ticket: Ticket, action: str) -> list[dict]:
    return list(ticket.entries.filter(kind=TimelineEntry.Kind.EVENT, data__action=action).values_list("data", flat=True))


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


# --- status ---------------------------------------------------------------------------------------

def test_solving_sets_solved_at_and_records_a_status_event(people, ticket):
    services.ticket_set_status(ticket=ticket, status=S.OPEN, by=people.agent_a)
    services.ticket_set_status(ticket=ticket, status=S.SOLVED, by=people.agent_a)

    ticket = fresh(ticket)
    assert ticket.status == S.SOLVED
    assert ticket.solved_at is not None
    assert ticket.closed_at is None
    assert events_of(ticket, "status") == [
        {"action": "status", "from": "new", "to": "open"},
        {"action": "status", "from": "open", "to": "solved"},
    ]
    assert ticket.entries.filter(kind=TimelineEntry.Kind.EVENT).last().author_user == people.agent_a


def test_reopening_a_solved_ticket_clears_solved_at(people, ticket):
    services.ticket_set_status(ticket=ticket, status=S.SOLVED, by=people.agent_a)
    services.ticket_set_status(ticket=ticket, status=S.OPEN, by=people.agent_a)

    ticket = fresh(ticket)
    assert ticket.status == S.OPEN
    assert ticket.solved_at is None


def test_closing_a_solved_ticket_keeps_solved_at_and_sets_closed_at(people, ticket):
    services.ticket_set_status(ticket=ticket, status=S.SOLVED, by=people.agent_a)
    solved_at = fresh(ticket).solved_at

    services.ticket_set_status(ticket=ticket, status=S.CLOSED, by=people.agent_a)

    ticket = fresh(ticket)
    assert ticket.status == S.CLOSED
    assert ticket.solved_at == solved_at
    assert ticket.closed_at is not None


def test_setting_the_same_status_changes_nothing(people, ticket):
    version = fresh(ticket).version

    services.ticket_set_status(ticket=ticket, status=S.NEW, by=people.agent_a)

    assert fresh(ticket).version == version
    assert events_of(ticket, "status") == []


@pytest.fixture
def closed(people, ticket):
    services.ticket_set_status(ticket=ticket, status=S.CLOSED, by=people.supervisor)
    return fresh(ticket)


def test_a_closed_ticket_refuses_a_status_change(people, closed):
    with pytest.raises(TicketClosed):
        services.ticket_set_status(ticket=closed, status=S.OPEN, by=people.supervisor)
    assert fresh(closed).status == S.CLOSED


@pytest.mark.parametrize("change", [
    lambda t, p: services.ticket_set_priority(ticket=t, priority="urgent", by=p.supervisor),
    lambda t, p: services.ticket_set_team(ticket=t, team=p.team_b, by=p.supervisor),
    lambda t, p: services.ticket_assign(ticket=t, agent=p.agent_a, by=p.supervisor),
    lambda t, p: services.ticket_set_tags(ticket=t, tags=["late"], by=p.supervisor),
    lambda t, p: services.ticket_reply(ticket=t, text="Hello?", by=p.supervisor),
], ids=["priority", "team", "assignee", "tags", "reply"])
def test_a_closed_ticket_refuses_every_other_change(people, closed, change):
    version = closed.version

    with pytest.raises(TicketClosed):
        change(closed, people)

    after = fresh(closed)
    assert after.version == version
    assert (after.priority, after.team, after.assignee) == (closed.priority, closed.team, closed.assignee)
    assert not after.tags.exists()
    assert not after.entries.filter(direction=TimelineEntry.Direction.OUTBOUND).exists()


# --- priority, team, assignment -------------------------------------------------------------------

def test_an_agent_may_not_set_the_priority(people, ticket):
    with pytest.raises(NotAllowed):
        services.ticket_set_priority(ticket=ticket, priority="urgent", by=people.agent_a)
    assert fresh(ticket).priority == "normal"


def test_a_supervisor_sets_the_priority_with_an_event(people, ticket):
    services.ticket_set_priority(ticket=ticket, priority="urgent", by=people.supervisor)

    assert fresh(ticket).priority == "urgent"
    assert events_of(ticket, "priority") == [{"action": "priority", "from": "normal", "to": "urgent"}]


def test_an_agent_may_not_move_a_ticket_to_another_team(people, ticket):
    with pytest.raises(NotAllowed):
        services.ticket_set_team(ticket=ticket, team=people.team_b, by=people.agent_a)
    assert fresh(ticket).team == people.team_a


def test_a_supervisor_moves_a_ticket_to_another_team(people, ticket):
    services.ticket_set_team(ticket=ticket, team=people.team_b, by=people.supervisor)

    assert fresh(ticket).team == people.team_b
    assert events_of(ticket, "team") == [{"action": "team", "from": people.team_a.pk, "to": people.team_b.pk}]


def test_an_agent_takes_a_ticket_and_lets_it_go(people, ticket):
    services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.agent_a)
    assert fresh(ticket).assignee == people.agent_a

    services.ticket_assign(ticket=ticket, agent=None, by=people.agent_a)
    assert fresh(ticket).assignee is None
    assert events_of(ticket, "assignee") == [
        {"action": "assignee", "from": None, "to": people.agent_a.pk},
        {"action": "assignee", "from": people.agent_a.pk, "to": None},
    ]


def test_an_agent_may_not_assign_someone_else(people, ticket):
    colleague = UserFactory(username="colleague", role="agent", teams=[people.team_a])

    with pytest.raises(NotAllowed):
        services.ticket_assign(ticket=ticket, agent=colleague, by=people.agent_a)
    assert fresh(ticket).assignee is None


def test_an_agent_may_not_unassign_someone_elses_ticket(people, ticket):
    services.ticket_assign(ticket=ticket, agent=people.supervisor, by=people.supervisor)

    with pytest.raises(NotAllowed):
        services.ticket_assign(ticket=ticket, agent=None, by=people.agent_a)
    assert fresh(ticket).assignee == people.supervisor


def test_a_supervisor_assigns_and_reassigns_anyone(people, ticket):
    services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.supervisor)
    services.ticket_assign(ticket=ticket, agent=people.agent_b, by=people.supervisor)

    assert fresh(ticket).assignee == people.agent_b


def test_a_user_without_a_role_cannot_be_assigned(people, ticket):
    outsider = UserFactory(username="outsider")

    with pytest.raises(DomainError):
        services.ticket_assign(ticket=ticket, agent=outsider, by=people.supervisor)
    assert fresh(ticket).assignee is None


# --- tags and versions ----------------------------------------------------------------------------

def test_tags_are_set_and_replaced_as_a_whole(people, ticket):
    services.ticket_set_tags(ticket=ticket, tags=["vip", " billing ", ""], by=people.agent_a)
    assert sorted(fresh(ticket).tags.values_list("name", flat=True)) == ["billing", "vip"]

    services.ticket_set_tags(ticket=ticket, tags=["billing", "refund"], by=people.agent_a)

    assert sorted(fresh(ticket).tags.values_list("name", flat=True)) == ["billing", "refund"]
    assert Tag.objects.filter(name="billing").count() == 1
    assert events_of(ticket, "tags")[-1] == {"action": "tags", "from": ["billing", "vip"], "to": ["billing", "refund"]}


def test_setting_the_same_tags_again_changes_nothing(people, ticket):
    services.ticket_set_tags(ticket=ticket, tags=["vip"], by=people.agent_a)
    version = fresh(ticket).version

    services.ticket_set_tags(ticket=ticket, tags=["vip"], by=people.agent_a)

    assert fresh(ticket).version == version
    assert len(events_of(ticket, "tags")) == 1


def test_every_change_increments_the_version(people, ticket):
    versions = [fresh(ticket).version]
    services.ticket_set_status(ticket=ticket, status=S.OPEN, by=people.supervisor)
    versions.append(fresh(ticket).version)
    services.ticket_set_priority(ticket=ticket, priority="high", by=people.supervisor)
    versions.append(fresh(ticket).version)
    services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.supervisor)
    versions.append(fresh(ticket).version)
    services.ticket_set_tags(ticket=ticket, tags=["x"], by=people.supervisor)
    versions.append(fresh(ticket).version)
    services.ticket_add_note(ticket=ticket, text="internal", by=people.supervisor)
    versions.append(fresh(ticket).version)

    assert versions == list(range(versions[0], versions[0] + 6))


# --- replies --------------------------------------------------------------------------------------

def test_a_reply_is_queued_on_the_channel_the_customer_wrote_from(people, ticket, api_channel):
    entry = services.ticket_reply(ticket=ticket, text="It ships today.", by=people.agent_a)

    assert entry.kind == TimelineEntry.Kind.MESSAGE
    assert entry.direction == TimelineEntry.Direction.OUTBOUND
    assert entry.delivery_status == TimelineEntry.Delivery.QUEUED
    assert entry.channel == api_channel.channel
    assert entry.identity.value == "anna@example.pl"
    assert entry.author_user == people.agent_a


def test_the_first_reply_opens_a_new_ticket_and_sets_first_response_at_once(people, ticket):
    services.ticket_reply(ticket=ticket, text="Looking into it.", by=people.agent_a)
    first_response_at = fresh(ticket).first_response_at
    assert first_response_at is not None
    assert fresh(ticket).status == S.OPEN

    services.ticket_set_status(ticket=ticket, status=S.PENDING, by=people.agent_a)
    services.ticket_reply(ticket=ticket, text="Any news?", by=people.agent_a)

    after = fresh(ticket)
    assert after.first_response_at == first_response_at
    assert after.status == S.PENDING


def test_a_note_is_internal_and_never_queued(people, ticket):
    note = services.ticket_add_note(ticket=ticket, text="Customer is a VIP", by=people.agent_a)

    assert note.kind == TimelineEntry.Kind.NOTE
    assert note.delivery_status == ""
    assert note.channel is None
    assert fresh(ticket).first_response_at is None


def test_a_reply_goes_to_the_channel_and_identity_the_customer_last_wrote_from(people, ticket):
    chat_channel, _ = make_channel(name="Chat API")
    phone = IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    EntryFactory(ticket=ticket, channel=chat_channel, identity=phone, author_customer=people.customer, text="Me again, by phone")

    entry = services.ticket_reply(ticket=ticket, text="Got it.", by=people.agent_a)

    assert (entry.channel, entry.identity) == (chat_channel, phone)


def test_a_reply_skips_a_channel_that_was_switched_off(people, ticket, api_channel):
    chat_channel, _ = make_channel(name="Chat API")
    EntryFactory(ticket=ticket, channel=chat_channel, author_customer=people.customer)
    chat_channel.is_active = False
    chat_channel.save(update_fields=["is_active"])

    entry = services.ticket_reply(ticket=ticket, text="Got it.", by=people.agent_a)

    assert entry.channel == api_channel.channel


def test_a_reply_to_another_customers_identity_is_refused(people, ticket, api_channel):
    boris = people.other_customer.identities.get()

    with pytest.raises(NoReplyChannel):
        services.ticket_reply(ticket=ticket, text="Hi", by=people.agent_a, channel=api_channel.channel, identity=boris)
    assert not ticket.entries.filter(direction=TimelineEntry.Direction.OUTBOUND).exists()


def test_a_ticket_without_any_channel_cannot_be_replied_to(people):
    ticket = TicketFactory(customer=people.customer, team=people.team_a)

    with pytest.raises(NoReplyChannel):
        services.ticket_reply(ticket=ticket, text="Hi", by=people.agent_a)


# --- live events ----------------------------------------------------------------------------------

def _flush_redis() -> None:
    # FLUSHDB of this worker's own Redis database: layer.flush() would also close the connection
    # pools of the publisher's loop (omnicenter.events) from this loop, which asyncio refuses.
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture
def layer():
    """The listeners a test opens (closed after it), on a flushed Redis."""
    _flush_redis()
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        listener.close()
    _flush_redis()


def listen(layer: list[Listener], *groups: str) -> Listener:
    """A fresh channel subscribed to `groups`, like a connected agent's socket."""
    listener = Listener(*groups)
    layer.append(listener)
    return listener


def receive(layer, listener: Listener, timeout: float = 10.0) -> dict | None:
    """The next message for `listener`, or None if nothing came within `timeout`."""
    return listener.receive(timeout)


def test_ticket_created_reaches_its_team_and_supervisors_but_not_another_team(
    people, api_channel, layer, django_capture_on_commit_callbacks,
):
    team_a = listen(layer, events.team_group(people.team_a.pk))
    supervisors = listen(layer, events.SUPERVISORS)
    team_b = listen(layer, events.team_group(people.team_b.pk))

    with django_capture_on_commit_callbacks(execute=True):
        entry = message_ingest(channel=api_channel.channel, message=NormalizedMessage(
            provider_message_id="m-1", sender=[identities.claim(Identity.Kind.EMAIL, "anna@example.pl")], text="Hi",
        ))

    expected = {"type": "oc.event", "event": {"type": "ticket.created", "ticket": entry.ticket_id, "version": 1}}
    assert receive(layer, team_a) == expected
    assert receive(layer, supervisors) == expected
    assert receive(layer, team_b, timeout=0.5) is None


def test_no_event_is_sent_when_the_transaction_rolls_back(people, ticket, layer, django_capture_on_commit_callbacks):
    team_a = listen(layer, events.team_group(people.team_a.pk))

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(NotAllowed), transaction.atomic():
        services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.agent_a)
        services.ticket_set_priority(ticket=ticket, priority="high", by=people.agent_a)

    assert callbacks == []
    assert fresh(ticket).assignee is None
    assert receive(layer, team_a, timeout=0.5) is None


def test_a_reassignment_reaches_the_previous_and_the_new_assignee(people, ticket, layer, django_capture_on_commit_callbacks):
    services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.supervisor)
    agent_a = listen(layer, events.agent_group(people.agent_a.pk))
    agent_b = listen(layer, events.agent_group(people.agent_b.pk))
    team_b = listen(layer, events.team_group(people.team_b.pk))

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_assign(ticket=ticket, agent=people.agent_b, by=people.supervisor)

    version = fresh(ticket).version
    expected = {"type": "oc.event", "event": {"type": "ticket.updated", "ticket": ticket.pk, "version": version}}
    assert receive(layer, agent_a) == expected
    assert receive(layer, agent_b) == expected
    assert receive(layer, team_b, timeout=0.5) is None


def test_a_team_move_reaches_the_previous_and_the_new_team(people, ticket, layer, django_capture_on_commit_callbacks):
    team_a = listen(layer, events.team_group(people.team_a.pk))
    team_b = listen(layer, events.team_group(people.team_b.pk))

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_set_team(ticket=ticket, team=people.team_b, by=people.supervisor)

    assert receive(layer, team_a)["event"]["type"] == "ticket.updated"
    assert receive(layer, team_b)["event"]["type"] == "ticket.updated"


def test_a_note_announces_a_timeline_append_to_the_team_only(people, ticket, layer, django_capture_on_commit_callbacks):
    team_a = listen(layer, events.team_group(people.team_a.pk))
    team_b = listen(layer, events.team_group(people.team_b.pk))

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_add_note(ticket=ticket, text="internal", by=people.agent_a)

    assert receive(layer, team_a)["event"] == {"type": "timeline.appended", "ticket": ticket.pk, "version": fresh(ticket).version}
    assert receive(layer, team_b, timeout=0.5) is None


def test_several_changes_are_all_or_nothing_and_unchanged_values_need_no_permission(people, ticket):
    # An agent resubmits the current priority (supervisors only) with a new status: allowed.
    services.ticket_change(ticket=ticket, by=people.agent_a, changes={"priority": ticket.priority, "status": S.PENDING})
    ticket.refresh_from_db()
    assert ticket.status == S.PENDING

    # A real priority change by an agent refuses the whole request: the status stays too.
    with pytest.raises(NotAllowed):
        services.ticket_change(ticket=ticket, by=people.agent_a, changes={"status": S.SOLVED, "priority": "urgent"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority) == (S.PENDING, "normal")
