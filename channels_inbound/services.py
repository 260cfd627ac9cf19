"""Channels and the inbound half of the spine: store, enqueue, process."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_inbound import registry
from channels_inbound.base import NormalizedMessage, Unprocessable
from channels_inbound.models import Channel, InboundEvent
from omnicenter import crypto
from omnicenter.errors import DomainError

if TYPE_CHECKING:
    from customers.services import Resolution
    from tickets.services import InboundBatch

logger = logging.getLogger(__name__)

PROCESSING_LEASE = timedelta(minutes=5)


class ChannelKindUnavailable(DomainError):
    code = "kind_unavailable"


def channel_create(
    *, kind: str, name: str, settings_data: dict[str, Any] | None = None, default_team=None
) -> tuple[Channel, dict[str, str]]:
    """Create a channel. Returns it with the secrets the server generated, shown to the admin once.

    `settings_data` must already be validated by the kind's settings serializer.
    """
    adapter = registry.adapter_for(kind)
    if adapter is None:
        raise ChannelKindUnavailable(_("Channels of kind “%(kind)s” are not available yet.") % {"kind": kind})
    settings_data = dict(settings_data or {})
    stored_secrets = {k: settings_data.pop(k) for k in adapter.secret_fields if settings_data.get(k)}
    generated = {name_: secrets.token_urlsafe(32) for name_ in adapter.generated_secrets}
    stored_secrets.update(generated)
    channel = Channel.objects.create(
        kind=kind, name=name, settings=settings_data, default_team=default_team,
        secrets_encrypted=crypto.encrypt_json(stored_secrets),
    )
    transaction.on_commit(lambda: adapter.channel_created(channel), robust=True)
    return channel, generated


def channel_update(*, channel: Channel, name: str | None = None, settings_data: dict | None = None,
                   is_active: bool | None = None, default_team=...) -> Channel:
    """Update a channel; secrets given in `settings_data` replace stored ones, absent ones are kept."""
    adapter = registry.adapter_for(channel.kind)
    fields = []
    if name is not None:
        channel.name = name
        fields.append("name")
    if is_active is not None:
        channel.is_active = is_active
        fields.append("is_active")
    if default_team is not ...:
        channel.default_team = default_team
        fields.append("default_team")
    if settings_data is not None:
        settings_data = dict(settings_data)
        secret_values = channel.secrets
        for key in adapter.secret_fields if adapter else ():
            if settings_data.get(key):
                secret_values[key] = settings_data.pop(key)
            settings_data.pop(key, None)
        channel.settings = settings_data
        channel.secrets_encrypted = crypto.encrypt_json(secret_values)
        fields += ["settings", "secrets_encrypted"]
    if fields:
        channel.save(update_fields=fields)
    return channel


def channel_test_connection(*, channel: Channel) -> tuple[bool, str]:
    """Check that a channel can reach its provider; a readable answer that never echoes secrets."""
    if channel.kind == Channel.Kind.EMAIL:
        from channels_inbound.email.imap import mailbox_test_connection

        if not (channel.settings or {}).get("imap_host"):
            return True, _("No mailbox to poll: mail arrives through the ESP's inbound webhook.")
        return mailbox_test_connection(settings_data=channel.settings, password=channel.secret("imap_password"))
    if channel.kind in (Channel.Kind.SMS, Channel.Kind.WHATSAPP, Channel.Kind.VOICE):
        from channels_inbound.twilio.messaging import connection_test

        return connection_test(channel=channel)
    adapter = registry.adapter_for(channel.kind)
    result = adapter.test_connection(channel) if adapter else None
    if result is not None:
        return result
    return True, _("Nothing to test for this kind of channel.")


def channel_record_rejection(*, channel: Channel, reason: str) -> None:
    Channel.objects.filter(pk=channel.pk).update(
        rejected_requests=F("rejected_requests") + 1, last_rejected_at=timezone.now()
    )
    logger.warning("rejected request on channel %s (%s): %s", channel.key, channel.kind, reason)


def _enqueue_process(event_id: int) -> None:
    from channels_inbound.tasks import process_inbound_event

    try:
        process_inbound_event.apply_async(args=[event_id], retry=False)
    except Exception:
        # The event is safe in PostgreSQL; the sweep will enqueue it once the broker is back.
        logger.warning("could not enqueue inbound event %s; the sweep will retry", event_id, exc_info=True)


def inbound_event_store(
    *, channel: Channel, external_id: str, payload: dict, headers: dict | None = None, enqueue: bool = True
) -> tuple[InboundEvent, bool]:
    """Store a provider payload exactly once per (channel, external id) and enqueue it after commit.

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (PostgreSQL and SQLite 3.35+): a webhook
    pays one statement here instead of get_or_create's SELECT, SAVEPOINT, INSERT and RELEASE, and
    concurrent duplicates cannot race. on_commit runs at once in autocommit, or at the caller's commit.
    """
    external_id = external_id[:255]
    event = InboundEvent(
        channel=channel, external_id=external_id, payload=payload, headers=headers or {},
        status=InboundEvent.Status.RECEIVED, received_at=timezone.now(),
    )
    event.next_attempt_at = event.received_at + settings.INBOUND_STALE_AFTER
    event.pk = _insert_unless_duplicate(event)
    if event.pk is None:
        return InboundEvent.objects.get(channel=channel, external_id=external_id), False
    if enqueue:  # callers that process the event themselves (import_mail) pass False
        transaction.on_commit(lambda: _enqueue_process(event.pk))
    return event, True


_INSERT_FIELDS = ("channel", "external_id", "payload", "headers", "status", "attempts", "last_error",
                  "received_at", "next_attempt_at", "processed_at")


def _insert_unless_duplicate(event: InboundEvent) -> int | None:
    return _insert_many_unless_duplicate([event]).get(event.external_id)


def _insert_many_unless_duplicate(events: list[InboundEvent]) -> dict[str, int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: {external id: new id} of the rows inserted."""
    connection = connections[router.db_for_write(InboundEvent)]
    fields = [InboundEvent._meta.get_field(name) for name in _INSERT_FIELDS]
    quote = connection.ops.quote_name
    row = f"({', '.join(['%s'] * len(fields))})"
    # Only quoted model identifiers are formatted in; every value is a query parameter.
    sql = (
        f"INSERT INTO {quote(InboundEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(events))} "
        f"ON CONFLICT ({quote('channel_id')}, {quote('external_id')}) DO NOTHING "
        f"RETURNING {quote('external_id')}, {quote('id')}"
    )
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for event in events for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return dict(cursor.fetchall())


def inbound_events_store_claimed(*, events: list[InboundEvent]) -> list[InboundEvent]:
    """Store many events at once for a caller that processes them itself in the same transaction
    (a mailbox import). Each is unique on (channel, external id) as in `inbound_event_store`;
    returns those inserted, with their ids. No task is enqueued: until the caller commits, the rows
    are its own and nobody else can claim them, so they may be stored already `processing`,
    `processed` or failed. The caller's commit makes them visible together with what processing
    them wrote, and a rollback leaves neither."""
    for event in events:
        event.external_id = event.external_id[:255]
    ids = _insert_many_unless_duplicate(events) if events else {}
    inserted = []
    for event in events:
        event.pk = ids.pop(event.external_id, None)  # pop: a repeated id in `events` is inserted once
        if event.pk is not None:
            inserted.append(event)
    return inserted


def _claim(event_id: int) -> bool:
    now = timezone.now()
    return bool(
        InboundEvent.objects.filter(pk=event_id)
        .filter(
            Q(status=InboundEvent.Status.RECEIVED)
            | Q(status__in=[InboundEvent.Status.FAILED, InboundEvent.Status.PROCESSING], next_attempt_at__lte=now)
        )
        .update(status=InboundEvent.Status.PROCESSING, attempts=F("attempts") + 1, next_attempt_at=now + PROCESSING_LEASE)
    )


def inbound_event_process(*, event_id: int) -> str:
    """Turn a stored event into timeline entries. Idempotent: claimed with a conditional UPDATE,
    and every entry is unique on its provider message id. Returns the outcome for logs and tests."""
    if not _claim(event_id):
        return "skipped"
    event = InboundEvent.objects.select_related("channel", "channel__default_team").get(pk=event_id)
    adapter = registry.adapter_for(event.channel.kind)
    try:
        with transaction.atomic():
            if adapter is None:
                raise ChannelKindUnavailable(f"no adapter for kind {event.channel.kind}")
            for message in adapter.parse(event):
                message_ingest(channel=event.channel, message=message, event=event)
            InboundEvent.objects.filter(pk=event_id).update(
                status=InboundEvent.Status.PROCESSED, processed_at=timezone.now(), next_attempt_at=None, last_error=""
            )
    except Exception as exc:
        inbound_event_record_failure(event=event, error=exc)
        return "failed"
    return "processed"


def inbound_event_record_failure(*, event: InboundEvent, error: BaseException) -> None:
    gave_up = event.attempts >= settings.INBOUND_MAX_ATTEMPTS or isinstance(error, Unprocessable)
    backoff = timedelta(seconds=min(30 * 2 ** max(event.attempts - 1, 0), 3600))
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.DEAD if gave_up else InboundEvent.Status.FAILED,
        last_error=f"{error.__class__.__name__}: {error}"[:2000],
        next_attempt_at=None if gave_up else timezone.now() + backoff,
    )
    logger.error("inbound event %s failed (attempt %s)%s", event.pk, event.attempts,
                 ", giving up" if gave_up else "", exc_info=error)


def inbound_event_retry(*, event: InboundEvent) -> None:
    """An admin asks for a failed or abandoned event to be processed again now."""
    updated = InboundEvent.objects.filter(
        pk=event.pk, status__in=[InboundEvent.Status.FAILED, InboundEvent.Status.DEAD]
    ).update(status=InboundEvent.Status.FAILED, attempts=0, next_attempt_at=timezone.now())
    if updated:
        transaction.on_commit(lambda: _enqueue_process(event.pk))


def inbound_events_sweep(*, batch: int | None = None) -> int:
    """Re-enqueue events left behind (broker down, worker died, backoff over). Bounded batch."""
    batch = batch or settings.INBOUND_SWEEP_BATCH
    now = timezone.now()
    due = InboundEvent.objects.filter(
        status__in=[InboundEvent.Status.RECEIVED, InboundEvent.Status.PROCESSING, InboundEvent.Status.FAILED],
        next_attempt_at__lte=now,
    )
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:batch])
    # Waiting again, due at the next sweep: a backlog larger than a batch moves on to new rows
    # instead of enqueuing the same ones every time, and a lost task is caught once more.
    due.filter(pk__in=ids).update(status=InboundEvent.Status.RECEIVED, next_attempt_at=now + settings.INBOUND_STALE_AFTER)
    for event_id in ids:
        _enqueue_process(event_id)
    return len(ids)


def message_ingest(*, channel: Channel, message: NormalizedMessage, event: InboundEvent | None = None,
                   from_archive: bool = False, resolution: Resolution | None = None,
                   batch: InboundBatch | None = None):
    """Steps 6 and 7 of the spine: the sender becomes a customer, the message lands on a ticket.

    `from_archive`: the message is history (a mailbox import), so the channel answers nobody (no
    auto-acknowledgement of mail that may be years old). A caller ingesting many messages in one
    transaction may pass the sender's `resolution` (from `customers_resolve_many`) and what it
    established for the whole `batch`."""
    from customers.services import customer_resolve
    from tickets.services import timeline_append_inbound

    if resolution is None:
        resolution = customer_resolve(claims=message.sender, display_name=message.display_name,
                                      language=message.language)
    entry = timeline_append_inbound(
        channel=channel, customer=resolution.customer, identity=resolution.identity, message=message, event=event,
        batch=batch,
    )
    adapter = registry.adapter_for(channel.kind)
    if adapter is not None and not from_archive:
        adapter.after_ingest(entry)
    return entry
