"""Outbound delivery: the mirror of the inbound spine, with a monotonic delivery state machine."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from channels_inbound import registry
from channels_inbound.base import PermanentSendError, TransientSendError, UnknownOutcome
from omnicenter import events
from tickets.models import Ticket, TimelineEntry

logger = logging.getLogger(__name__)
D = TimelineEntry.Delivery

# Ranks only ever increase. `failed` may follow anything short of delivered; `unknown` is reached
# only from `sending` and left only by a provider callback or a reconciliation.
RANK = {D.QUEUED: 0, D.SENDING: 1, D.UNKNOWN: 2, D.SENT: 3, D.DELIVERED: 4, D.READ: 5}
STUCK_SENDING_AFTER = timedelta(minutes=10)
LOST_QUEUED_AFTER = timedelta(minutes=2)


def allowed_predecessors(status: str) -> list[str]:
    if status == D.SENDING:
        return [D.QUEUED]
    if status == D.UNKNOWN:
        return [D.SENDING]
    if status == D.FAILED:
        return [D.QUEUED, D.SENDING, D.UNKNOWN, D.SENT]
    if status in (D.SENT, D.DELIVERED, D.READ):
        # A provider's delivered/read is a stronger fact than an earlier failure report.
        lower = [s for s, rank in RANK.items() if 1 <= rank < RANK[status]]
        return lower + ([D.FAILED] if status != D.SENT else [])
    return []


def message_status_apply(*, entry_id: int, status: str, provider_message_id: str = "", error: str = "") -> bool:
    """Move a message forward; a late or out-of-order report never moves it back. True if it moved."""
    now = timezone.now()
    changes = {"delivery_status": status, "status_changed_at": now, "next_attempt_at": None}
    if provider_message_id:
        changes["provider_message_id"] = provider_message_id
    if status == D.SENT:
        changes["sent_at"] = now
    elif status == D.DELIVERED:
        changes["delivered_at"] = now
    elif status == D.READ:
        changes["read_at"] = now
    if status == D.FAILED or error:
        changes["delivery_error"] = error[:2000]
    moved = TimelineEntry.objects.filter(
        pk=entry_id, direction=TimelineEntry.Direction.OUTBOUND, delivery_status__in=allowed_predecessors(status)
    ).update(**changes)
    if moved:
        _publish_status(entry_id)
    return bool(moved)


def message_complaint_record(*, entry_id: int, recipient: str = "", provider: str = "") -> bool:
    """Note on an outbound message that its recipient reported it as spam (an ESP's complaint
    event), shown live on the message. The delivery state is left alone: the mail was delivered.
    The first complaint is kept; True if this one was recorded."""
    with transaction.atomic():
        entry = (TimelineEntry.objects.select_for_update().filter(
            pk=entry_id, direction=TimelineEntry.Direction.OUTBOUND).only("pk", "data").first())
        if entry is None or (entry.data or {}).get("complaint"):
            return False
        entry.data = {**(entry.data or {}), "complaint": {
            "at": timezone.now().isoformat(), "recipient": recipient[:320], "provider": provider[:50],
        }}
        entry.save(update_fields=["data"])
        _publish_status(entry_id)
    return True


def _publish_status(entry_id: int) -> None:
    ticket = Ticket.objects.filter(entries__pk=entry_id).first()
    if ticket is not None:
        Ticket.objects.filter(pk=ticket.pk).update(version=F("version") + 1)
        ticket.version += 1
        events.publish_ticket_event("message.status", ticket)


@dataclass
class DeliveryOutcome:
    status: str
    retry_in: int | None = None


def enqueue_delivery(entry_id: int, countdown: int | None = None) -> None:
    from channels_inbound.tasks import deliver_message

    try:
        if countdown and not deliver_message.app.conf.task_always_eager:
            deliver_message.apply_async(args=[entry_id], countdown=countdown, retry=False)
        elif not countdown:
            deliver_message.apply_async(args=[entry_id], retry=False)
    except Exception:
        logger.warning("could not enqueue delivery of %s; the sweep will retry", entry_id, exc_info=True)


def message_deliver(*, entry_id: int) -> DeliveryOutcome | None:
    """Send one queued message through its channel's adapter, outside any transaction or lock."""
    now = timezone.now()
    claimed = TimelineEntry.objects.filter(
        pk=entry_id, direction=TimelineEntry.Direction.OUTBOUND, delivery_status=D.QUEUED,
    ).exclude(next_attempt_at__gt=now).update(
        delivery_status=D.SENDING, delivery_attempts=F("delivery_attempts") + 1, status_changed_at=now
    )
    if not claimed:
        return None
    entry = TimelineEntry.objects.select_related("channel", "identity", "ticket").get(pk=entry_id)
    adapter = registry.adapter_for(entry.channel.kind) if entry.channel else None
    if adapter is None:
        message_status_apply(entry_id=entry_id, status=D.FAILED, error="This channel cannot send messages.")
        return DeliveryOutcome(D.FAILED)
    try:
        result = adapter.send(entry)
    except TransientSendError as exc:
        if entry.delivery_attempts >= settings.OUTBOUND_MAX_ATTEMPTS:
            message_status_apply(entry_id=entry_id, status=D.FAILED, error=f"gave up after {entry.delivery_attempts} attempts: {exc}")
            return DeliveryOutcome(D.FAILED)
        delay = min(30 * 2 ** (entry.delivery_attempts - 1), 3600)
        TimelineEntry.objects.filter(pk=entry_id, delivery_status=D.SENDING).update(
            delivery_status=D.QUEUED, delivery_error=str(exc)[:2000], next_attempt_at=now + timedelta(seconds=delay),
        )
        enqueue_delivery(entry_id, countdown=delay)
        return DeliveryOutcome(D.QUEUED, retry_in=delay)
    except PermanentSendError as exc:
        message_status_apply(entry_id=entry_id, status=D.FAILED, error=str(exc))
        return DeliveryOutcome(D.FAILED)
    except UnknownOutcome as exc:
        message_status_apply(entry_id=entry_id, status=D.UNKNOWN, error=str(exc))
        return DeliveryOutcome(D.UNKNOWN)
    except Exception as exc:
        # A bug in an adapter: we cannot know whether the provider got the message.
        logger.exception("adapter %s crashed sending %s", entry.channel.kind, entry_id)
        # Only the class: exception text may carry URLs with tokens (the logs keep the details).
        message_status_apply(entry_id=entry_id, status=D.UNKNOWN, error=f"Internal error ({exc.__class__.__name__}); see the logs.")
        return DeliveryOutcome(D.UNKNOWN)
    if result.data:
        TimelineEntry.objects.filter(pk=entry_id).update(data={**entry.data, **result.data})
    message_status_apply(entry_id=entry_id, status=D.SENT, provider_message_id=result.provider_message_id)
    if result.thread_keys:
        from tickets.services import ticket_record_thread_keys

        ticket_record_thread_keys(ticket=entry.ticket, channel=entry.channel, keys=result.thread_keys)
    return DeliveryOutcome(D.SENT)


def outbound_sweep(*, batch: int = 200) -> dict[str, int]:
    """Periodic: re-enqueue lost or due messages, mark stuck sends unknown, reconcile unknowns."""
    now = timezone.now()
    due = list(
        TimelineEntry.objects.filter(delivery_status=D.QUEUED, direction=TimelineEntry.Direction.OUTBOUND)
        .exclude(next_attempt_at__gt=now)
        .filter(status_changed_at__lte=now - LOST_QUEUED_AFTER)
        .values_list("pk", flat=True)[:batch]
    ) + list(
        TimelineEntry.objects.filter(delivery_status=D.QUEUED, next_attempt_at__lte=now).values_list("pk", flat=True)[:batch]
    )
    due = list(dict.fromkeys(due))
    # Marked as just queued: a backlog moves on to new rows at the next sweep instead of enqueuing
    # the same ones again, and a lost task is still caught LOST_QUEUED_AFTER later.
    TimelineEntry.objects.filter(pk__in=due, delivery_status=D.QUEUED).update(status_changed_at=now, next_attempt_at=None)
    for entry_id in due:
        enqueue_delivery(entry_id)
    stuck = list(
        TimelineEntry.objects.filter(delivery_status=D.SENDING, status_changed_at__lte=now - STUCK_SENDING_AFTER)
        .values_list("pk", flat=True)[:batch]
    )
    for entry_id in stuck:
        message_status_apply(entry_id=entry_id, status=D.UNKNOWN, error="The sending worker stopped; outcome unknown.")
    reconciled = 0
    # Oldest first, and only those not asked about in the last hour, so a long list is worked through.
    unknown = (
        TimelineEntry.objects.filter(delivery_status=D.UNKNOWN)
        .filter(~Q(data__has_key="reconciled_at") | Q(data__reconciled_at__lte=(now - timedelta(hours=1)).isoformat()))
        .select_related("channel").order_by("status_changed_at")[:batch]
    )
    for entry in unknown:
        TimelineEntry.objects.filter(pk=entry.pk).update(data={**entry.data, "reconciled_at": now.isoformat()})
        adapter = registry.adapter_for(entry.channel.kind) if entry.channel else None
        status = adapter.reconcile(entry) if adapter else None
        if status and message_status_apply(entry_id=entry.pk, status=status):
            reconciled += 1
    return {"enqueued": len(set(due)), "stuck": len(stuck), "reconciled": reconciled}


def message_mark_not_sent(*, entry: TimelineEntry, by) -> bool:
    """An agent who checked with the customer declares an `unknown` send as not delivered; it then
    fails and can be sent again. (Unknown sends are never re-sent without such a decision.)"""
    name = getattr(by, "display_name", "") or "?"
    return message_status_apply(
        entry_id=entry.pk, status=D.FAILED, error=f"Marked as not delivered by {name}.",
    )


def message_retry(*, entry: TimelineEntry) -> bool:
    """An agent retries a failed message. Unknown outcomes are not retried blindly."""
    updated = TimelineEntry.objects.filter(pk=entry.pk, delivery_status=D.FAILED).update(
        delivery_status=D.QUEUED, delivery_error="", next_attempt_at=None, delivery_attempts=0,
        status_changed_at=timezone.now(),
    )
    if updated:
        from django.db import transaction

        transaction.on_commit(lambda: enqueue_delivery(entry.pk))
        _publish_status(entry.pk)
    return bool(updated)


def secret_send(rows, send, *, final_attempt: bool, what: str) -> str:
    """Send a one-time secret (a portal sign-in link or code, a chat email code) kept encrypted in
    its row's `outbox`, then blank the outbox: the secret leaves the database once it is on its
    way, or for good once sending has failed for the last time (`send_error` says why).

    `rows` is the queryset of that one row; `send()` sends and raises Transient- or
    PermanentSendError. A transient failure before the last attempt is raised for the task to retry.
    Returns "sent" or "failed".
    """
    try:
        send()
    except TransientSendError as exc:
        if not final_attempt:
            raise
        rows.update(outbox="", send_error=str(exc)[:2000])
        return "failed"
    except PermanentSendError as exc:
        logger.warning("%s not sent: %s", what, exc)
        rows.update(outbox="", send_error=str(exc)[:2000])
        return "failed"
    rows.update(outbox="", sent_at=timezone.now())
    return "sent"

