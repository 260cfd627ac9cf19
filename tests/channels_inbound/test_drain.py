"""New inbound events are drained in batches (channels_inbound.services.inbound_events_drain).

A burst of webhooks publishes one drain task, not one task per message; the drain claims waiting
events in batches (concurrent drains never share one), processes a batch's events of one channel in
one transaction (or one by one if that fails, so a bad event fails alone), and sends the batch's
live events once per group. Over real PostgreSQL and Redis (broker, cache, channel layer).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_inbound import selectors
from channels_inbound.models import Channel, InboundEvent
from channels_inbound.services import (
    _kick_clear,
    _linger,
    inbound_event_store,
    inbound_events_drain,
    inbound_events_sweep,
)
from customers.models import Identity
from omnicenter.celery import app as celery_app
from tests.conftest import message
from tests.e2e.test_spine_faults import in_threads
from tests.servers import session_key_for
from tickets.models import Ticket, TimelineEntry

WAIT = 10  # seconds a socket may take to get a message; not a speed requirement


def store(api, external_id: str, **sender):
    payload = message(external_id, f"Message {external_id}", **(sender or {"email": f"{external_id}@example.com"}))
    return inbound_event_store(channel=api.channel, external_id=external_id, payload=payload)[0]


@pytest.fixture
def broker_queue():
    """The real Redis list Celery publishes to, emptied before and after."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    queue = django_settings.CELERY_TASK_DEFAULT_QUEUE
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    client.delete(queue)
    _kick_clear()
    try:
        yield lambda: [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]
    finally:
        celery_app.conf.task_always_eager = eager
        client.delete(queue)
        _kick_clear()


def test_a_burst_of_webhooks_publishes_one_drain_and_the_drain_takes_them_all(
    people, api_channel, post_inbound, broker_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answers = [post_inbound(api_channel, message(f"m-{i}", f"Text {i}")) for i in range(20)]

    assert [a.status_code for a in answers] == [202] * 20
    assert broker_queue() == ["channels_inbound.tasks.process_inbound_events"]

    assert inbound_events_drain() == 20

    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    assert TimelineEntry.objects.filter(inbound_event__isnull=False).count() == 20
    # The drain let go of the kick: the next message publishes a drain again.
    with django_capture_on_commit_callbacks(execute=True):
        post_inbound(api_channel, message("m-late", "One more"))
    assert broker_queue() == ["channels_inbound.tasks.process_inbound_events"] * 2


def test_after_a_partial_batch_the_drain_holds_the_kick_so_new_messages_wait_for_it(
    people, api_channel, post_inbound, settings, django_capture_on_commit_callbacks, broker_queue
):
    settings.INBOUND_DRAIN_LINGER_MS = 1
    store(api_channel, "m-1")
    _linger()  # what a drain does after a partial batch, before its next claim

    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(api_channel, message("m-2", "While it waits")).status_code == 202
    assert broker_queue() == []  # no drain task of its own: the lingering drain takes it

    assert inbound_events_drain() == 2
    # The drain let go of the kick before its last claim: the next message publishes a drain.
    with django_capture_on_commit_callbacks(execute=True):
        post_inbound(api_channel, message("m-3", "Later"))
    assert broker_queue() == ["channels_inbound.tasks.process_inbound_events"]


def test_a_full_batch_asks_for_another_drain_so_an_idle_worker_joins_in(people, api_channel, broker_queue):
    for i in range(5):
        store(api_channel, f"m-{i}")

    assert inbound_events_drain(batch=2) == 5

    # The first full batch kicked one helper; a drain asks for help once, so tasks never pile up.
    assert broker_queue() == ["channels_inbound.tasks.process_inbound_events"]


def test_the_drain_pays_fewer_statements_per_message_than_one_task_per_event(people, api_channel):
    # Returning customers with an open ticket each: the commonest message.
    senders = [{"email": f"returning{i}@example.com"} for i in range(12)]
    for i, sender in enumerate(senders):
        store(api_channel, f"first-{i}", **sender)
    inbound_events_drain()

    def drain_cost(count: int, prefix: str) -> int:
        for i in range(count):
            store(api_channel, f"{prefix}-{i}", **senders[i])
        with CaptureQueriesContext(connection) as queries:
            assert inbound_events_drain() == count
        return len(queries)

    six, twelve = drain_cost(6, "a"), drain_cost(12, "b")

    per_message = (twelve - six) // 6
    assert twelve - six == 6 * per_message  # constant per message
    # The ticket lock, the entry's INSERT, the ticket's UPDATE. Processed one by one, a message paid
    # 9 (BEGIN, identity, entry by provider id, customer lock, those 3, event UPDATE, COMMIT), and
    # the per-event task before the drain 11 (its claim and a read of the event besides).
    assert per_message == 3
    # Per drain: the claim, the channels, the empty claim that ends it; per batch: BEGIN, the
    # identities, the customer locks, the entries that exist already, the events' UPDATE, COMMIT.
    assert six - 6 * per_message == 3 + 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_process_every_event_exactly_once(people, api_channel, broker_queue):
    events = [store(api_channel, f"m-{i}", email=f"sender{i % 7}@example.com") for i in range(40)]

    handled = in_threads(3, lambda: inbound_events_drain(batch=4))

    assert not [h for h in handled if isinstance(h, Exception)], handled
    assert sum(handled) == 40
    assert set(InboundEvent.objects.values_list("status", "attempts")) == {(InboundEvent.Status.PROCESSED, 1)}
    assert sorted(TimelineEntry.objects.filter(inbound_event__isnull=False).values_list("inbound_event", flat=True)) == sorted(
        e.pk for e in events
    )
    # Seven senders, each with one ticket holding all of their messages.
    assert Ticket.objects.count() == 7


def test_one_bad_event_in_a_batch_fails_alone_and_is_retried_later(people, api_channel):
    good_before = store(api_channel, "m-1")
    bad = inbound_event_store(channel=api_channel.channel, external_id="m-bad", payload={"id": "m-bad"})[0]
    good_after = store(api_channel, "m-2")

    assert inbound_events_drain() == 3

    statuses = dict(InboundEvent.objects.values_list("pk", "status"))
    assert statuses == {good_before.pk: "processed", bad.pk: "failed", good_after.pk: "processed"}
    bad.refresh_from_db()
    assert bad.last_error and bad.next_attempt_at is not None  # the sweep retries it after the backoff
    assert not TimelineEntry.objects.filter(inbound_event=bad).exists()
    assert inbound_events_drain() == 0  # failed events wait for their backoff, not for the next drain


def test_a_message_failing_inside_the_batch_transaction_rolls_it_back_and_fails_alone(
    people, api_channel, settings, broker_queue
):
    # Parsed fine, refused while being appended (its attachment is over the limit): the batch's
    # transaction rolls back and its events go again one by one.
    settings.ATTACHMENT_MAX_BYTES = 10
    first = store(api_channel, "m-1", email="first@example.com")
    payload = message("m-bad", "With a big file", email="bad@example.com")
    payload["attachments"] = [{"filename": "big.txt", "data_base64": base64.b64encode(b"x" * 50).decode()}]
    bad = inbound_event_store(channel=api_channel.channel, external_id="m-bad", payload=payload)[0]
    last = store(api_channel, "m-2", email="last@example.com")

    assert inbound_events_drain() == 3

    statuses = dict(InboundEvent.objects.values_list("pk", "status"))
    assert statuses[first.pk] == statuses[last.pk] == InboundEvent.Status.PROCESSED
    assert statuses[bad.pk] in (InboundEvent.Status.FAILED, InboundEvent.Status.DEAD)
    assert "limit" in InboundEvent.objects.get(pk=bad.pk).last_error
    # Nothing of the rolled-back attempt is left: one entry and one ticket per good message, no
    # customer, ticket or entry for the bad one.
    assert sorted(TimelineEntry.objects.values_list("inbound_event", flat=True)) == [first.pk, last.pk]
    assert Ticket.objects.count() == 2
    assert not Identity.objects.filter(value="bad@example.com").exists()
    assert set(InboundEvent.objects.filter(pk__in=[first.pk, last.pk]).values_list("attempts", flat=True)) == {1}


def test_a_batch_groups_messages_by_channel_and_keeps_each_senders_order(people, api_channel, settings):
    other = Channel.objects.create(key="api-two", kind=Channel.Kind.API, name="Second API", default_team=people.team_a)
    for i in range(4):
        store(api_channel, f"a-{i}", email="same@example.com")
        inbound_event_store(channel=other, external_id=f"b-{i}", payload=message(f"b-{i}", f"B {i}", email="same@example.com"))

    assert inbound_events_drain() == 8

    # One customer; one ticket per channel (the latest ticket of the channel's conversation), each
    # with its messages in the order they came.
    assert Identity.objects.filter(value="same@example.com").count() == 1
    for channel, texts in ((api_channel.channel, [f"Message a-{i}" for i in range(4)]),
                           (other, [f"B {i}" for i in range(4)])):
        ticket = Ticket.objects.get(origin_channel=channel)
        assert list(ticket.entries.filter(direction="in").order_by("pk").values_list("text", flat=True)) == texts


def test_the_sweep_hands_a_lost_drain_its_events_back(people, api_channel, settings, broker_queue):
    settings.INBOUND_STALE_AFTER = timedelta(0)
    event = store(api_channel, "m-1")
    # A drain claimed it and died: its lease is over.
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.PROCESSING, next_attempt_at=event.received_at)

    assert inbound_events_drain() == 0  # a claimed event is not taken again while its lease runs
    assert inbound_events_sweep() == 1
    assert broker_queue() == ["channels_inbound.tasks.process_inbound_events"]
    assert inbound_events_drain() == 1

    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PROCESSED, 1)


def test_with_redis_unreachable_for_the_kick_the_message_is_kept_and_the_sweep_processes_it(
    people, api_channel, post_inbound, settings, django_capture_on_commit_callbacks, caplog
):
    settings.INBOUND_STALE_AFTER = timedelta(0)
    working = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with django_capture_on_commit_callbacks(execute=True):
        answer = post_inbound(api_channel, message("m-1", "Anyone there?"))

    assert answer.status_code == 202
    assert "could not kick the inbound drain" in caplog.text
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.RECEIVED

    settings.REDIS_URL = working
    assert inbound_events_sweep() == 1  # eager here: the kicked drain runs at once
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED
    assert TimelineEntry.objects.get(inbound_event=event).text == "Anyone there?"


# --- Live events: once per group per batch ----------------------------------------------------------


@pytest.mark.xdist_group("asgi")
@pytest.mark.django_db(transaction=True)
def test_a_batch_reaches_each_socket_once_per_event(asgi_server, people, api_channel, broker_queue):
    people.supervisor.teams.add(people.team_a)  # in two of the batch's groups: supervisors and the team
    with (
        asgi_server.agent_socket(session_key_for(people.agent_a)) as agent,
        asgi_server.agent_socket(session_key_for(people.supervisor)) as supervisor,
    ):
        for i in range(3):
            store(api_channel, f"m-{i}")
        assert inbound_events_drain() == 3
        tickets = list(Ticket.objects.order_by("pk"))
        expected = [{"type": "ticket.created", "ticket": t.pk, "version": t.version} for t in tickets]

        got_agent = [json.loads(agent.recv(timeout=WAIT)) for _ in range(3)]
        got_supervisor = [json.loads(supervisor.recv(timeout=WAIT)) for _ in range(3)]
        # Nothing more (a copy through a second group would come next): a marker sent now comes first.
        marker = {"type": "marker", "marker": "end"}
        from omnicenter import events

        events.send_now([events.agent_group(people.supervisor.pk)], {"type": "oc.event", "event": marker})
        assert json.loads(supervisor.recv(timeout=WAIT)) == marker

    assert got_agent == expected
    assert got_supervisor == expected


def test_batched_events_keep_each_ticket_once_at_its_latest_version(own_channel_layer):
    from omnicenter import events
    from tests.layers import Listener

    with Listener("team.424242") as listener:
        with events.batched():
            for version in (1, 2, 3):
                events.send_now(["team.424242"], {"type": "oc.event", "event": {"type": "timeline.appended", "ticket": 7, "version": version}})
            events.send_now(["team.424242"], {"type": "oc.event", "event": {"type": "ticket.created", "ticket": 8, "version": 1}})
        received = listener.receive()

    # Without the batch, the first message would have been version 1 of ticket 7 alone.
    assert received == {"type": "oc.events", "events": [
        {"type": "timeline.appended", "ticket": 7, "version": 3},
        {"type": "ticket.created", "ticket": 8, "version": 1},
    ]}


# --- The channel a webhook calls, cached per process ------------------------------------------------


def test_a_channel_deactivated_through_the_application_stops_answering_at_once(people, api_channel, post_inbound):
    assert post_inbound(api_channel, message("m-1")).status_code == 202

    channel = Channel.objects.get(pk=api_channel.channel.pk)
    channel.is_active = False
    channel.save(update_fields=["is_active"])

    assert post_inbound(api_channel, message("m-2")).status_code == 404


def test_another_process_sees_a_deactivation_within_the_cache_time(people, api_channel, post_inbound, settings):
    assert post_inbound(api_channel, message("m-1")).status_code == 202
    # Changed by another process: this one's cache was not cleared.
    Channel.objects.filter(pk=api_channel.channel.pk).update(is_active=False)

    assert post_inbound(api_channel, message("m-2")).status_code == 202  # still cached here

    settings.CHANNEL_CACHE_SECONDS = 0
    selectors._cache[api_channel.channel.key] = (0.0, selectors._cache[api_channel.channel.key][1])  # expired
    assert post_inbound(api_channel, message("m-3")).status_code == 404


def test_each_caller_gets_its_own_copy_of_a_cached_channel(people, api_channel):
    first = selectors.channel_for_webhook(api_channel.channel.key, kinds=("api",))
    first.settings["outbound_url"] = "https://attacker.example/"
    first.name = "changed in one request"

    second = selectors.channel_for_webhook(api_channel.channel.key, kinds=("api",))

    assert second.settings.get("outbound_url", "") != "https://attacker.example/"
    assert second.name == api_channel.channel.name
    assert selectors.channel_for_webhook(api_channel.channel.key, kinds=("telegram",)) is None


def test_an_event_stored_claimed_is_left_to_the_caller_that_waits_for_it(people, api_channel):
    from channels_inbound.services import inbound_event_process_stored

    event, created = inbound_event_store(
        channel=api_channel.channel, external_id="chat-1", payload=message("chat-1", "Hi from the widget"), claim=True,
    )

    assert created and event.status == InboundEvent.Status.PROCESSING
    assert inbound_events_drain() == 0  # a drain busy with other messages cannot take it first

    entries = inbound_event_process_stored(event=event, claimed=True)

    assert [e.text for e in entries] == ["Hi from the widget"]
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PROCESSED, 1)
    # A caller holding an event it did not store claimed must win the claim first.
    again, created_again = inbound_event_store(channel=api_channel.channel, external_id="chat-1", payload={}, claim=True)
    assert not created_again and inbound_event_process_stored(event=again) is None
