"""The spine under bad luck (DESIGN.md "The spine" and "Nothing is lost"): concurrent duplicate
deliveries, Redis down when a message arrives, processing that fails half-way, workers that die,
and the bounded sweep that brings every stored event onto a timeline in the end.

Faults are real: a dead broker port, a PostgreSQL trigger that refuses writes, a payload the
adapter cannot parse. Nothing of ours is mocked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from kombu.exceptions import OperationalError

from channels_inbound.models import InboundEvent
from channels_inbound.services import (
    inbound_event_process,
    inbound_event_retry,
    inbound_event_store,
    inbound_events_sweep,
)
from channels_inbound.tasks import process_inbound_event
from customers.models import Customer, Identity
from omnicenter import celery_app
from tests.conftest import message
from tickets.models import Ticket, TimelineEntry

DEAD_BROKER = "redis://127.0.0.1:1/0"
NEW_SENDER = {"email": "new.person@example.com", "name": "Jan Nowak"}
CHANGELIST = "/admin/channels_inbound/inboundevent/"


def _forget_broker_connections() -> None:
    # Celery makes its producer pools for the broker URL of the time they are first used.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def redis_down(url: str = DEAD_BROKER) -> Iterator[None]:
    """Tasks are published to a broker nobody listens on, as when Redis is down."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.task_always_eager
    conf.broker_url, conf.task_always_eager = url, False
    _forget_broker_connections()
    try:
        yield
    finally:
        conf.broker_url, conf.task_always_eager = saved
        _forget_broker_connections()


@contextmanager
def broker_that_hangs_up() -> Iterator[tuple[str, list[int]]]:
    """A TCP port that accepts connections and closes them at once, counting them."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0", accepted
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join()


@contextmanager
def database_refuses_timeline_writes() -> Iterator[None]:
    """PostgreSQL itself fails every new timeline entry, after the customer and ticket were written."""
    table = TimelineEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION oc_test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$;"
            f" CREATE TRIGGER oc_test_refuse BEFORE INSERT ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION oc_test_refuse();"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER oc_test_refuse ON {table}; DROP FUNCTION oc_test_refuse();")


def backoff_over(event: InboundEvent) -> None:
    """Time passes: the event's retry is due now."""
    InboundEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def in_threads(count: int, work) -> list:
    """Run `work()` in `count` threads released at the same instant; each closes its connections."""
    start = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = work()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- Duplicates and races ---------------------------------------------------------------------------


@pytest.mark.xdist_group("asgi")
@pytest.mark.django_db(transaction=True)
def test_same_message_delivered_ten_times_at_once_is_stored_and_appended_once(asgi_server, people, api_channel):
    payload = message("dup-1", "Is my order on its way?", **NEW_SENDER)

    responses = in_threads(10, lambda: asgi_server.post_inbound(api_channel, payload))

    assert sorted(r.status_code for r in responses) == [200] * 9 + [202]
    assert [r.json()["duplicate"] for r in responses].count(False) == 1
    event = InboundEvent.objects.get()
    assert {r.json()["event_id"] for r in responses} == {event.pk}
    assert event.status == InboundEvent.Status.PROCESSED
    entry = TimelineEntry.objects.get()
    assert entry.inbound_event == event
    assert Ticket.objects.get() == entry.ticket
    assert Customer.objects.filter(identities__value="new.person@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_event_processed_by_ten_workers_at_once_is_appended_once(people, api_channel):
    with redis_down():  # stored, not yet processed, as if re-enqueued by several sweeps
        event, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=message())

    outcomes = in_threads(10, lambda: inbound_event_process(event_id=event.pk))

    assert sorted(outcomes) == ["processed"] + ["skipped"] * 9
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PROCESSED, 1)
    assert TimelineEntry.objects.filter(inbound_event=event).count() == 1


# --- Redis down -------------------------------------------------------------------------------------


@pytest.mark.xdist_group("asgi")
@pytest.mark.django_db(transaction=True)
def test_message_arriving_while_redis_is_down_is_accepted_kept_and_processed_by_the_sweep(
    asgi_server, people, api_channel, settings, caplog
):
    settings.INBOUND_STALE_AFTER = timedelta(0)  # the sweep may take it as soon as it is stored
    with redis_down():
        with pytest.raises(OperationalError):
            process_inbound_event.apply_async(args=[0], retry=False)

        response = asgi_server.post_inbound(api_channel, message("m-1", "Anyone there?"))

        assert response.status_code == 202
        assert response.json()["duplicate"] is False
        event = InboundEvent.objects.get()
        assert (event.status, event.attempts) == (InboundEvent.Status.RECEIVED, 0)
        assert not Ticket.objects.exists()
        assert "could not enqueue the inbound drain" in caplog.text
        assert inbound_events_sweep() == 1  # tried, and still nothing is lost
        event.refresh_from_db()
        assert event.status == InboundEvent.Status.RECEIVED

    assert inbound_events_sweep() == 1

    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PROCESSED, 1)
    entry = TimelineEntry.objects.get(inbound_event=event)
    assert entry.text == "Anyone there?"
    assert entry.ticket.customer == people.customer


def test_publish_to_a_failing_broker_is_tried_once_and_left_to_the_sweep(
    people, api_channel, django_capture_on_commit_callbacks
):
    # Retrying the broker connection (kombu's default) would hold the provider's request for seconds.
    with (
        broker_that_hangs_up() as (url, accepted),
        redis_down(url),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        event, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=message())

    assert len(callbacks) == 1
    assert accepted == [1]
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.RECEIVED, 0)


# --- Processing failures ----------------------------------------------------------------------------


def test_failure_half_way_leaves_nothing_written_and_the_sweep_retries_after_the_backoff(
    people, api_channel, django_capture_on_commit_callbacks
):
    customers_before = Customer.objects.count()
    with database_refuses_timeline_writes():
        before = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            event, _ = inbound_event_store(
                channel=api_channel.channel, external_id="m-1", payload=message("m-1", "Hello?", **NEW_SENDER)
            )
        after = timezone.now()

        event.refresh_from_db()
        assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, 1)
        assert "disk on fire" in event.last_error
        assert before + timedelta(seconds=30) <= event.next_attempt_at <= after + timedelta(seconds=30)
        # The customer and the ticket were written before the entry failed, and rolled back with it.
        assert Customer.objects.count() == customers_before
        assert not Identity.objects.filter(value="new.person@example.com").exists()
        assert not Ticket.objects.exists()
        assert not TimelineEntry.objects.exists()
        assert inbound_events_sweep() == 0  # the backoff is not over

    backoff_over(event)
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound_events_sweep() == 1

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (InboundEvent.Status.PROCESSED, 2, "")
    entry = TimelineEntry.objects.get(inbound_event=event)
    assert entry.ticket.customer.identities.get().value == "new.person@example.com"


def test_message_that_can_never_be_parsed_is_listed_for_admins_and_goes_dead_after_max_attempts(
    people, api_channel, settings, client
):
    settings.INBOUND_MAX_ATTEMPTS = 3
    poison = {**message("m-1"), "attachments": [{"filename": "a.txt", "data_base64": "abc"}]}
    event, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=poison)
    client.force_login(people.admin)

    assert inbound_event_process(event_id=event.pk) == "failed"

    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, 1)
    assert event.next_attempt_at > timezone.now()
    assert "Incorrect padding" in event.last_error
    failed_list = client.get(CHANGELIST, {"status__exact": "failed"})
    assert failed_list.status_code == 200
    assert "Incorrect padding" in failed_list.text
    assert "Incorrect padding" not in client.get(CHANGELIST, {"status__exact": "processed"}).text

    for _attempt in (2, 3):
        backoff_over(event)
        assert inbound_event_process(event_id=event.pk) == "failed"

    event.refresh_from_db()
    assert (event.status, event.attempts, event.next_attempt_at) == (InboundEvent.Status.DEAD, 3, None)
    assert inbound_events_sweep() == 0
    assert not TimelineEntry.objects.exists()
    dead_list = client.get(CHANGELIST, {"status__exact": "dead"})
    assert dead_list.status_code == 200
    assert "Incorrect padding" in dead_list.text


@pytest.mark.parametrize("persona", ["agent_a", "supervisor"])
def test_failed_events_list_is_refused_to_staff_who_are_not_admins(people, api_channel, client, persona):
    event, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=message())
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, last_error="Error: secret detail")
    client.force_login(getattr(people, persona))

    response = client.get(CHANGELIST, {"status__exact": "failed"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_dead_event_retried_by_an_admin_is_processed_once_the_cause_is_gone(
    people, api_channel, settings, django_capture_on_commit_callbacks
):
    settings.INBOUND_MAX_ATTEMPTS = 2
    with database_refuses_timeline_writes():
        with django_capture_on_commit_callbacks(execute=True):
            event, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=message())
        backoff_over(event)
        with django_capture_on_commit_callbacks(execute=True):
            inbound_events_sweep()
        event.refresh_from_db()
        assert event.status == InboundEvent.Status.DEAD

    with django_capture_on_commit_callbacks(execute=True):
        inbound_event_retry(event=event)

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (InboundEvent.Status.PROCESSED, 1, "")
    assert TimelineEntry.objects.filter(inbound_event=event).count() == 1


def test_admin_retry_action_makes_a_dead_event_processable_again(
    people, api_channel, client, django_capture_on_commit_callbacks
):
    event, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=message())
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.DEAD, attempts=8, next_attempt_at=None, last_error="OperationalError: gone"
    )
    client.force_login(people.admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(CHANGELIST, {"action": "retry", "_selected_action": [event.pk]})

    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PROCESSED, 1)
    assert TimelineEntry.objects.filter(inbound_event=event).count() == 1


# --- Dead workers and the sweep ---------------------------------------------------------------------


def test_event_stuck_in_processing_after_its_lease_is_swept_and_processed_once(
    people, api_channel, django_capture_on_commit_callbacks
):
    # Neither is enqueued: the test transaction never commits. Both were claimed by a worker that
    # died; only the first one's lease is over.
    stuck, _ = inbound_event_store(channel=api_channel.channel, external_id="m-1", payload=message("m-1"))
    leased, _ = inbound_event_store(channel=api_channel.channel, external_id="m-2", payload=message("m-2"))
    now = timezone.now()
    InboundEvent.objects.filter(pk=stuck.pk).update(status="processing", attempts=1, next_attempt_at=now - timedelta(seconds=1))
    InboundEvent.objects.filter(pk=leased.pk).update(status="processing", attempts=1, next_attempt_at=now + timedelta(minutes=4))

    with django_capture_on_commit_callbacks(execute=True):
        assert inbound_events_sweep() == 1
        assert inbound_events_sweep() == 0
    assert inbound_event_process(event_id=stuck.pk) == "skipped"

    stuck.refresh_from_db()
    leased.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (InboundEvent.Status.PROCESSED, 2)
    assert TimelineEntry.objects.filter(inbound_event=stuck).count() == 1
    assert (leased.status, leased.attempts) == (InboundEvent.Status.PROCESSING, 1)


def test_sweep_resets_at_most_a_batch_per_run_and_one_drain_takes_the_whole_backlog(
    people, api_channel, settings, django_assert_num_queries
):
    settings.INBOUND_SWEEP_BATCH = 2
    settings.INBOUND_STALE_AFTER = timedelta(0)
    events = [
        inbound_event_store(channel=api_channel.channel, external_id=f"m-{i}", payload=message(f"m-{i}"))[0]
        for i in range(5)
    ]

    with redis_down(), django_assert_num_queries(2):
        assert inbound_events_sweep() == 2  # one bounded select and one update, whatever the backlog
    swept = [inbound_events_sweep() for _ in range(3)]

    # The second run kicks a drain, and the drain claims every waiting event, not only the swept ones.
    assert swept == [2, 0, 0]
    processed = InboundEvent.objects.filter(status=InboundEvent.Status.PROCESSED)
    assert processed.count() == 5
    assert TimelineEntry.objects.filter(inbound_event__in=events).count() == 5


def test_sweep_takes_the_oldest_due_events_first(people, api_channel, settings):
    settings.INBOUND_SWEEP_BATCH = 2
    settings.INBOUND_STALE_AFTER = timedelta(0)
    events = [
        inbound_event_store(channel=api_channel.channel, external_id=f"m-{i}", payload=message(f"m-{i}"))[0]
        for i in range(4)
    ]
    settings.INBOUND_STALE_AFTER = timedelta(minutes=5)

    with redis_down():
        inbound_events_sweep()

    due_later = dict(InboundEvent.objects.values_list("pk", "next_attempt_at"))
    assert due_later[events[0].pk] == due_later[events[1].pk] > due_later[events[3].pk] > due_later[events[2].pk]


def test_a_sweep_with_a_backlog_moves_on_instead_of_enqueuing_the_same_events_again(people, api_channel, settings):
    settings.INBOUND_SWEEP_BATCH = 2
    for i in range(4):
        inbound_event_store(channel=api_channel.channel, external_id=f"m-{i}", payload=message(f"m-{i}"))
    InboundEvent.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    with redis_down():
        inbound_events_sweep()
        first = set(InboundEvent.objects.filter(next_attempt_at__gt=timezone.now()).values_list("pk", flat=True))
        inbound_events_sweep()
        both = set(InboundEvent.objects.filter(next_attempt_at__gt=timezone.now()).values_list("pk", flat=True))

    assert len(first) == 2
    assert len(both) == 4  # the second run took the other two
