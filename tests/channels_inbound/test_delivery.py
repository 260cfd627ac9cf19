"""Outbound delivery of replies on the `api` channel to a local HTTP server standing in for the
integrator, with retries, unknown outcomes, the sweep and the monotonic delivery state machine."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_inbound.base import NormalizedMessage
from channels_inbound.delivery import message_deliver, message_retry, message_status_apply, outbound_sweep
from channels_inbound.services import message_ingest
from customers import identities
from tests.ports import free_port
from tickets import services
from tickets.models import Ticket, TimelineEntry

D = TimelineEntry.Delivery


@pytest.fixture
def channel(api_channel, http_stub):
    """The team A api channel, replying to the stub."""
    api_channel.channel.settings = {"outbound_url": http_stub.url("/omnicenter/replies")}
    api_channel.channel.save(update_fields=["settings"])
    return api_channel.channel


@pytest.fixture
def ticket(people, channel):
    entry = message_ingest(channel=channel, message=NormalizedMessage(
        provider_message_id="m-1", sender=[identities.claim("email", "anna@example.pl")], text="Where is my order?",
    ))
    return entry.ticket


@pytest.fixture
def reply(people, ticket, django_capture_on_commit_callbacks):
    """Reply as agent A; the delivery runs after commit (eager Celery), as in production."""

    def send(text: str = "It ships today.", *, deliver: bool = True) -> TimelineEntry:
        with django_capture_on_commit_callbacks(execute=deliver):
            entry = services.ticket_reply(ticket=ticket, text=text, by=people.agent_a)
        entry.refresh_from_db()
        return entry

    return send


def reload(entry: TimelineEntry) -> TimelineEntry:
    return TimelineEntry.objects.get(pk=entry.pk)


def make_due(entry: TimelineEntry) -> None:
    """Let the backoff pass, as the clock would."""
    TimelineEntry.objects.filter(pk=entry.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def age(entry: TimelineEntry, minutes: int) -> None:
    TimelineEntry.objects.filter(pk=entry.pk).update(status_changed_at=timezone.now() - timedelta(minutes=minutes))


# --- the request ----------------------------------------------------------------------------------

def test_a_reply_is_posted_as_signed_json_with_an_idempotency_key(people, api_channel, channel, reply, http_stub):
    http_stub.respond(status=201, json={"id": "crm-123"})

    entry = reply("It ships today.")

    [request] = http_stub.requests
    assert (request.method, request.path) == ("POST", "/omnicenter/replies")
    assert request.header("Content-Type") == "application/json"
    assert request.json() == {
        "id": str(entry.public_id), "ticket": entry.ticket_id, "to": {"kind": "email", "value": "anna@example.pl"},
        "text": "It ships today.", "html": "",
    }
    expected = hmac.new(api_channel.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.header("X-Omnicenter-Signature") == f"sha256={expected}"
    assert request.header("Idempotency-Key") == str(entry.public_id)


def test_a_2xx_answer_marks_the_reply_sent_with_the_providers_id(people, ticket, reply, http_stub):
    http_stub.respond(status=200, json={"id": "crm-123", "status": "accepted"})
    version = Ticket.objects.get(pk=ticket.pk).version

    entry = reply()

    assert entry.delivery_status == D.SENT
    assert entry.provider_message_id == "crm-123"
    assert entry.sent_at is not None
    assert entry.delivery_attempts == 1
    assert entry.delivery_error == ""
    assert Ticket.objects.get(pk=ticket.pk).version > version


def test_a_2xx_answer_without_json_is_still_sent(people, reply, http_stub):
    http_stub.respond(status=204, body=b"")

    entry = reply()

    assert (entry.delivery_status, entry.provider_message_id) == (D.SENT, "")


def test_without_an_outbound_url_the_reply_is_marked_sent_and_nothing_is_posted(people, channel, reply, http_stub):
    channel.settings = {}
    channel.save(update_fields=["settings"])

    entry = reply()

    assert entry.delivery_status == D.SENT
    assert http_stub.requests == []


# --- refusals and retries -------------------------------------------------------------------------

def test_a_4xx_answer_fails_the_reply_with_the_reason(people, reply, http_stub):
    http_stub.respond(status=422, json={"error": "unknown recipient"})

    entry = reply()

    assert entry.delivery_status == D.FAILED
    assert "422" in entry.delivery_error
    assert "unknown recipient" in entry.delivery_error


def test_a_failed_reply_can_be_retried_and_then_goes_out(people, reply, http_stub, django_capture_on_commit_callbacks):
    http_stub.respond(status=400, body="bad request")
    entry = reply()
    http_stub.respond(status=200, json={"id": "crm-2"})

    with django_capture_on_commit_callbacks(execute=True):
        assert message_retry(entry=entry) is True

    entry = reload(entry)
    assert (entry.delivery_status, entry.provider_message_id, entry.delivery_error) == (D.SENT, "crm-2", "")
    assert len(http_stub.requests) == 2
    assert http_stub.requests[0].header("Idempotency-Key") == http_stub.requests[1].header("Idempotency-Key")


def test_only_failed_replies_can_be_retried(people, reply, http_stub):
    entry = reply()
    assert entry.delivery_status == D.SENT

    assert message_retry(entry=entry) is False
    assert reload(entry).delivery_status == D.SENT


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_5xx_or_429_answer_requeues_with_a_backoff(people, reply, http_stub, status):
    http_stub.respond(status=status)
    before = timezone.now()

    entry = reply()

    assert entry.delivery_status == D.QUEUED
    assert entry.delivery_attempts == 1
    assert entry.next_attempt_at > before + timedelta(seconds=20)
    assert str(status) in entry.delivery_error
    assert message_deliver(entry_id=entry.pk) is None, "not due yet"
    assert len(http_stub.requests) == 1


def test_after_the_last_attempt_a_5xx_fails_the_reply(people, reply, http_stub, settings):
    settings.OUTBOUND_MAX_ATTEMPTS = 3
    http_stub.respond(status=502)
    entry = reply()

    make_due(entry)
    second = message_deliver(entry_id=entry.pk)
    make_due(entry)
    third = message_deliver(entry_id=entry.pk)

    assert (second.status, second.retry_in) == (D.QUEUED, 60)
    assert third.status == D.FAILED
    entry = reload(entry)
    assert entry.delivery_status == D.FAILED
    assert entry.delivery_attempts == 3
    assert "gave up after 3 attempts" in entry.delivery_error
    assert len(http_stub.requests) == 3


def test_the_sweep_sends_a_requeued_reply_once_it_is_due(people, reply, http_stub):
    http_stub.respond(status=503)
    entry = reply()
    http_stub.respond(status=200, json={"id": "crm-9"})

    outbound_sweep()
    assert reload(entry).delivery_status == D.QUEUED

    make_due(entry)
    outbound_sweep()

    entry = reload(entry)
    assert (entry.delivery_status, entry.provider_message_id, entry.delivery_attempts) == (D.SENT, "crm-9", 2)
    assert len(http_stub.requests) == 2


def test_a_refused_connection_is_retried_later(people, channel, reply):
    closed_port = free_port()
    channel.settings = {"outbound_url": f"http://127.0.0.1:{closed_port}/replies"}
    channel.save(update_fields=["settings"])

    entry = reply()

    assert entry.delivery_status == D.QUEUED
    assert "cannot connect" in entry.delivery_error


# --- unknown outcomes and the sweep ---------------------------------------------------------------

def test_a_read_timeout_is_unknown_and_never_sent_again(people, reply, http_stub, settings):
    settings.OUTBOUND_HTTP_TIMEOUT = 1
    http_stub.respond(status=200, json={"id": "late"}, delay=4)

    entry = reply()

    assert entry.delivery_status == D.UNKNOWN
    assert "timed out" in entry.delivery_error
    make_due(entry)
    age(entry, 60)
    outbound_sweep()
    assert message_deliver(entry_id=entry.pk) is None
    assert message_retry(entry=entry) is False
    assert reload(entry).delivery_status == D.UNKNOWN
    assert len(http_stub.requests) == 1


def test_a_send_stuck_in_sending_for_over_10_minutes_becomes_unknown(people, reply, http_stub):
    stuck = reply("stuck", deliver=False)
    recent = reply("recent", deliver=False)
    TimelineEntry.objects.filter(pk__in=[stuck.pk, recent.pk]).update(delivery_status=D.SENDING)
    age(stuck, 11)
    age(recent, 9)

    result = outbound_sweep()

    assert result["stuck"] == 1
    assert reload(stuck).delivery_status == D.UNKNOWN
    assert reload(recent).delivery_status == D.SENDING
    assert http_stub.requests == []


def test_a_queued_reply_whose_enqueue_was_lost_is_sent_by_the_sweep(people, reply, http_stub):
    http_stub.respond(status=200, json={"id": "crm-lost"})
    lost = reply("lost", deliver=False)
    fresh = reply("just queued", deliver=False)
    age(lost, 3)

    outbound_sweep()

    assert (reload(lost).delivery_status, reload(lost).provider_message_id) == (D.SENT, "crm-lost")
    assert reload(fresh).delivery_status == D.QUEUED
    assert [r.json()["text"] for r in http_stub.requests] == ["lost"]


def test_a_note_is_never_picked_up_by_the_sweep(people, ticket, http_stub):
    note = services.ticket_add_note(ticket=ticket, text="internal", by=people.agent_a)
    age(note, 30)

    outbound_sweep()

    assert reload(note).delivery_status == ""
    assert http_stub.requests == []


# --- the monotonic state machine ------------------------------------------------------------------

def in_state(reply, status: str) -> TimelineEntry:
    entry = reply(deliver=False)
    TimelineEntry.objects.filter(pk=entry.pk).update(delivery_status=status)
    return entry


@pytest.mark.parametrize(("start", "report", "moves"), [
    (D.DELIVERED, D.SENT, False),
    (D.READ, D.DELIVERED, False),
    (D.READ, D.SENT, False),
    (D.DELIVERED, D.FAILED, False),
    (D.FAILED, D.DELIVERED, True),
    (D.FAILED, D.READ, True),
    (D.UNKNOWN, D.SENT, True),
    (D.UNKNOWN, D.DELIVERED, True),
    (D.SENT, D.DELIVERED, True),
    (D.SENT, D.FAILED, True),
    (D.DELIVERED, D.READ, True),
    (D.SENT, D.UNKNOWN, False),
    (D.SENT, D.QUEUED, False),
])
def test_status_reports_only_move_a_message_forward(people, reply, start, report, moves):
    entry = in_state(reply, start)

    moved = message_status_apply(entry_id=entry.pk, status=report, error="provider said so" if report == D.FAILED else "")

    assert moved is moves
    assert reload(entry).delivery_status == (report if moves else start)


def test_status_reports_record_their_times_and_the_provider_id(people, reply):
    entry = in_state(reply, D.SENDING)

    message_status_apply(entry_id=entry.pk, status=D.SENT, provider_message_id="p-1")
    message_status_apply(entry_id=entry.pk, status=D.DELIVERED)
    message_status_apply(entry_id=entry.pk, status=D.READ)

    entry = reload(entry)
    assert entry.provider_message_id == "p-1"
    assert entry.sent_at <= entry.delivered_at <= entry.read_at


def test_a_status_report_never_touches_an_inbound_message(people, ticket):
    inbound = ticket.entries.get()

    assert message_status_apply(entry_id=inbound.pk, status=D.FAILED, error="x") is False
    assert reload(inbound).delivery_status == D.RECEIVED


def test_unknown_sends_are_asked_about_oldest_first_and_not_again_within_the_hour(people, api_channel):
    from datetime import timedelta

    from django.utils import timezone

    from channels_inbound.delivery import outbound_sweep
    from tests.factories import TicketFactory
    from tickets.models import TimelineEntry

    ticket = TicketFactory(customer=people.customer, origin_channel=api_channel.channel)
    old = TimelineEntry.objects.create(ticket=ticket, kind="message", direction="out", channel=api_channel.channel,
                                       delivery_status="unknown", status_changed_at=timezone.now() - timedelta(hours=2))
    asked = TimelineEntry.objects.create(ticket=ticket, kind="message", direction="out", channel=api_channel.channel,
                                         delivery_status="unknown", status_changed_at=timezone.now() - timedelta(hours=3),
                                         data={"reconciled_at": timezone.now().isoformat()})

    outbound_sweep(batch=1)

    old.refresh_from_db()
    asked.refresh_from_db()
    assert "reconciled_at" in old.data  # the never-asked one was taken, though newer
    assert asked.data["reconciled_at"] < old.data["reconciled_at"]
