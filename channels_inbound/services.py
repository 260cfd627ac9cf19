"""Channels and the inbound half of the spine: store, enqueue, process."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections, router, transaction
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


DRAIN_KICK_KEY = "oc:inbound:drain-kick"


def inbound_kick() -> None:
    """Make sure a drain task will look at the waiting events, publishing at most one task for a burst.

    The kick is a Redis key (the cache in embedded mode) set only if absent: the request that adds it
    publishes `process_inbound_events`, every other request of the burst pays one `SET NX` and
    nothing else. The drain deletes the key before each claim, so an event committed before a
    failed `SET NX` is always claimed by the task that holds the key. A broker or Redis failure is
    logged and left to the sweep: the event is safe in PostgreSQL.
    """
    from channels_inbound.tasks import process_inbound_events

    try:
        if not _kick_set():
            return
    except Exception:
        logger.warning("could not kick the inbound drain; the sweep will retry", exc_info=True)
        return
    try:
        process_inbound_events.apply_async(retry=False)
    except Exception:
        _kick_clear()
        logger.warning("could not enqueue the inbound drain; the sweep will retry", exc_info=True)


_kick_redis: dict[tuple[int, str], Any] = {}


def _kick_client():
    """A Redis client of this process for the kick, or None without Redis (embedded: the cache).

    Django's Redis cache builds a client object on every call (0.3-0.5 ms of CPU per webhook
    here); this one is built once per process and URL."""
    if not settings.REDIS_URL:
        return None
    key = (os.getpid(), settings.REDIS_URL)
    client = _kick_redis.get(key)
    if client is None:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        _kick_redis.clear()
        _kick_redis[key] = client
    return client


def _kick_set() -> bool:
    client = _kick_client()
    if client is None:
        return cache.add(DRAIN_KICK_KEY, 1, timeout=settings.INBOUND_KICK_SECONDS)
    return bool(client.set(DRAIN_KICK_KEY, b"1", nx=True, ex=settings.INBOUND_KICK_SECONDS))


def _kick_hold() -> None:
    """Set the kick whether or not it is set: messages stored from now on find a drain on its way
    (the one that calls this, which deletes the key again before its next claim)."""
    client = _kick_client()
    if client is None:
        cache.set(DRAIN_KICK_KEY, 1, timeout=settings.INBOUND_KICK_SECONDS)
    else:
        client.set(DRAIN_KICK_KEY, b"1", ex=settings.INBOUND_KICK_SECONDS)


def _kick_clear() -> None:
    with contextlib.suppress(Exception):
        client = _kick_client()
        if client is None:
            cache.delete(DRAIN_KICK_KEY)
        else:
            client.delete(DRAIN_KICK_KEY)


def inbound_event_store(
    *, channel: Channel, external_id: str, payload: dict, headers: dict | None = None, enqueue: bool = True,
    claim: bool = False,
) -> tuple[InboundEvent, bool]:
    """Store a provider payload exactly once per (channel, external id) and kick a drain after commit.

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (PostgreSQL and SQLite 3.35+): a webhook
    pays one statement here instead of get_or_create's SELECT, SAVEPOINT, INSERT and RELEASE, and
    concurrent duplicates cannot race. on_commit runs at once in autocommit, or at the caller's commit.

    `claim=True` stores it already claimed by the caller (`processing`, with the lease), for callers
    that process it at once with `inbound_event_process_stored` (web chat): no drain can take it
    first, and if the caller dies the lease runs out and the sweep hands it to a drain.
    """
    external_id = external_id[:255]
    event = InboundEvent(
        channel=channel, external_id=external_id, payload=payload, headers=headers or {},
        status=InboundEvent.Status.RECEIVED, received_at=timezone.now(),
    )
    event.next_attempt_at = event.received_at + settings.INBOUND_STALE_AFTER
    if claim:
        event.status, event.attempts = InboundEvent.Status.PROCESSING, 1
        event.next_attempt_at = event.received_at + PROCESSING_LEASE
        enqueue = False
    event.pk = _insert_unless_duplicate(event)
    if event.pk is None:
        return InboundEvent.objects.get(channel=channel, external_id=external_id), False
    if enqueue:  # callers that process the event themselves (import_mail) pass False
        transaction.on_commit(inbound_kick)
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
    """Turn one stored event into timeline entries (the sweep's and an admin's retry). Idempotent:
    claimed with a conditional UPDATE, and every entry is unique on its provider message id.
    Returns the outcome for logs and tests."""
    if not _claim(event_id):
        return "skipped"
    event = InboundEvent.objects.select_related("channel", "channel__default_team").get(pk=event_id)
    return _process_claimed(event)


def _claim_batch(size: int) -> list[InboundEvent]:
    """Claim up to `size` waiting events, oldest first, in one statement. Concurrent drains skip
    each other's rows (SKIP LOCKED), so each event goes to exactly one of them."""
    table = InboundEvent._meta.db_table
    lease_until = timezone.now() + PROCESSING_LEASE
    # SQLite (embedded mode) has one writer at a time and no row locks to skip.
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    # Only the model's own table name is formatted in; every value is a query parameter.
    sql = (
        f"UPDATE {table} SET status = %s, attempts = attempts + 1, next_attempt_at = %s "  # noqa: S608
        f"WHERE id IN (SELECT id FROM {table} WHERE status = %s ORDER BY id LIMIT %s{skip_locked}) "
        f"RETURNING *"
    )
    params = [InboundEvent.Status.PROCESSING, lease_until, InboundEvent.Status.RECEIVED, size]
    events = sorted(InboundEvent.objects.raw(sql, params), key=lambda event: event.pk)
    channels = {c.pk: c for c in Channel.objects.select_related("default_team").filter(
        pk__in={event.channel_id for event in events})}
    for event in events:
        event.channel = channels[event.channel_id]
    return events


def _process_claimed(event: InboundEvent, entries: list | None = None) -> str:
    """Process a claimed event in its own transaction; the timeline entries it made (or found
    already there) are appended to `entries` when given."""
    adapter = registry.adapter_for(event.channel.kind)
    try:
        with transaction.atomic():
            if adapter is None:
                raise ChannelKindUnavailable(f"no adapter for kind {event.channel.kind}")
            made = [message_ingest(channel=event.channel, message=message, event=event) for message in adapter.parse(event)]
            _mark_processed(event.pk)
    except Exception as exc:
        inbound_event_record_failure(event=event, error=exc)
        return "failed"
    if entries is not None:
        entries.extend(made)
    return "processed"


def inbound_event_process_stored(*, event: InboundEvent, claimed: bool = False) -> list | None:
    """Process an event the caller has just stored and holds (web chat messages, whose clients wait
    for the answer): the per-event claim unless stored claimed, then the same processing as a
    drain, without reading the event back. Returns its timeline entries, or None if it was not processed here
    (claimed by someone else, or failed: the sweep retries it). `claimed`: the caller has just
    stored it with `claim=True`, so it is the caller's already."""
    if not claimed:
        if not _claim(event.pk):
            return None
        event.attempts += 1
    entries: list = []
    return entries if _process_claimed(event, entries) == "processed" else None


def _mark_processed(event_id: int) -> None:
    # In the event's own transaction, with its timeline entries. Hand-written: once per message.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {InboundEvent._meta.db_table} SET status = %s, processed_at = %s, next_attempt_at = NULL, "  # noqa: S608
            "last_error = '' WHERE id = %s",
            [InboundEvent.Status.PROCESSED, timezone.now(), event_id],
        )


def _more_hands() -> bool:
    """Kick another drain, except in eager mode (embedded), where it would run inside this one."""
    from omnicenter.celery import app

    if app.conf.task_always_eager:
        return False
    inbound_kick()
    return True


def inbound_events_drain(*, batch: int | None = None, budget: timedelta | None = None) -> int:
    """Process waiting events in batches until none is left (or the time budget is spent).

    What the per-event task paid for every message, a batch pays once: the task itself, the claim,
    the channel lookup, and the live events (`events.batched`: one group send per group per batch).
    Each event still commits on its own, so one bad event fails alone and a lock on a customer or a
    ticket is held for one message, never for a batch. Returns the number of events handled.
    """
    from omnicenter import events as live

    batch = batch or settings.INBOUND_BATCH_SIZE
    deadline = timezone.now() + (budget or settings.INBOUND_DRAIN_BUDGET)
    handled, helped = 0, False
    while True:
        # Before the claim: a message stored from now on kicks a new drain (see inbound_kick).
        _kick_clear()
        claimed = _claim_batch(batch)
        if not claimed:
            return handled
        if len(claimed) == batch and not helped:
            helped = _more_hands()  # more may be waiting: let an idle worker process join in (once)
        with live.batched():
            _process_claimed_batch(claimed)
        handled += len(claimed)
        if timezone.now() >= deadline and _more_hands():
            return handled  # give the worker back to other tasks; a new drain goes on
        if len(claimed) < batch:
            _linger()


def _linger() -> None:
    """After a partial batch, hold the kick for INBOUND_DRAIN_LINGER_MS: what arrives meanwhile
    waits for this drain's next claim instead of publishing a drain task of its own (the publish
    in the webhook and the task in the worker cost more CPU than a small batch's messages). Safe:
    the key is deleted again before that claim, and if this process dies here the key expires
    (INBOUND_KICK_SECONDS) and the sweep hands the waiting events on. Not in eager mode (embedded),
    where the drain runs inside a request."""
    from omnicenter.celery import app

    if settings.INBOUND_DRAIN_LINGER_MS <= 0 or app.conf.task_always_eager:
        return
    try:
        _kick_hold()
    except Exception:
        return  # Redis unreachable: no wait; every message kicks (or the sweep takes it) as before
    time.sleep(settings.INBOUND_DRAIN_LINGER_MS / 1000)


def _process_claimed_batch(events: list[InboundEvent]) -> None:
    """Process claimed events a channel at a time, each channel's in one transaction
    (`messages_ingest_together`); if that fails, its events go again one by one, each in its own
    transaction (`_process_claimed`), so a bad event fails alone and the others are processed."""
    by_channel: dict[int, list[InboundEvent]] = {}
    for event in events:
        by_channel.setdefault(event.channel_id, []).append(event)
    for group in by_channel.values():
        alone = group if len(group) == 1 else _process_together(group)
        for event in alone:
            _process_claimed(event)


def _process_together(events: list[InboundEvent]) -> list[InboundEvent]:
    """One transaction for the events of one channel; returns those left to process one by one
    (all of them if the transaction failed, those the adapter could not parse otherwise)."""
    channel = events[0].channel
    adapter = registry.adapter_for(channel.kind)
    if adapter is None:
        return events
    parsed: list[tuple[InboundEvent, list[NormalizedMessage]]] = []
    alone: list[InboundEvent] = []
    for event in events:
        try:
            parsed.append((event, list(adapter.parse(event))))
        except Exception:
            alone.append(event)  # its own transaction records why
    if not parsed:
        return alone
    try:
        with transaction.atomic():
            messages_ingest_together(channel=channel, items=[
                (message, event) for event, messages in parsed for message in messages])
            _mark_processed_many([event.pk for event, _messages in parsed])
    except Exception:
        logger.info("inbound batch of %s events on channel %s rolled back; processing them one by one",
                    len(parsed), channel.key, exc_info=True)
        return events
    return alone


def messages_ingest_together(*, channel: Channel, items: list[tuple[NormalizedMessage, InboundEvent | None]],
                             from_archive: bool = False) -> list:
    """`message_ingest` for many messages of one channel in the caller's transaction, in order.

    What each message would ask on its own is asked once for all: the senders are resolved together
    (`customers_resolve_many`), their customers locked in one statement (ascending ids, before any
    ticket: the documented lock order), one query finds the entries that exist already and one the
    conversation keys the messages carry; the keys they bring are written in one statement at the
    end. Each message is then threaded and appended as `message_ingest` does. Returns the entries.
    """
    from customers.services import customers_resolve_many
    from tickets.models import TimelineEntry
    from tickets.services import InboundBatch

    if not items:
        return []
    resolutions = customers_resolve_many(
        requests=[(message.sender, message.display_name, message.language) for message, _event in items]
    )
    customer_ids = sorted({resolution.customer.pk for resolution in resolutions})
    _customers_lock(customer_ids)
    ids = {message.provider_message_id[:255] for message, _event in items if message.provider_message_id}
    existing = set(TimelineEntry.objects.filter(
        channel=channel, direction=TimelineEntry.Direction.INBOUND, provider_message_id__in=ids,
    ).values_list("provider_message_id", flat=True)) if ids else set()
    batch = InboundBatch(locked_customers=set(customer_ids), absent_ids=ids - existing)
    batch.threads_for(channel=channel, keys=(key for message, _event in items for key in message.thread_keys))
    entries = [
        message_ingest(channel=channel, message=message, event=event, from_archive=from_archive,
                       resolution=resolution, batch=batch)
        for (message, event), resolution in zip(items, resolutions, strict=True)
    ]
    batch.flush_threads(channel=channel)
    return entries


def _customers_lock(ids: list[int]) -> None:
    # One statement, ascending ids: two batches locking overlapping customers cannot deadlock.
    from customers.models import Customer

    if ids and connection.features.has_select_for_no_key_update:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Customer._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [ids]  # noqa: S608
            )


def _mark_processed_many(event_ids: list[int]) -> None:
    InboundEvent.objects.filter(pk__in=event_ids).update(
        status=InboundEvent.Status.PROCESSED, processed_at=timezone.now(), next_attempt_at=None, last_error=""
    )


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
    """Hand events left behind (broker down, worker died, backoff over) back to the drain. Bounded batch."""
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
    if ids:
        inbound_kick()
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
