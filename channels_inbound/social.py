"""What the social messengers (Messenger, Instagram, Telegram) share beyond the spine: media the
worker downloads after the message is on the timeline, edits and deletions of messages, read and
delivery reports, and the customer-care window."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from channels_inbound.delivery import message_status_apply
from channels_inbound.models import Channel
from channels_inbound.provider_http import Downloaded, MediaUnavailable
from customers.models import ContactPreference, Identity
from omnicenter import events
from tickets.attachments import AttachmentRejected, attachment_store
from tickets.models import Ticket, TimelineEntry

logger = logging.getLogger(__name__)
D = TimelineEntry.Delivery
PENDING = "pending_media"
FAILED = "media_failed"


def media_fetch_pending(*, entry_id: int, fetch: Callable[[Channel, dict], Downloaded]) -> int:
    """Download the files an inbound message announced (Meta URLs, Telegram file ids) and attach
    them. Each download happens outside any transaction; storing it is claimed under the entry's
    lock, so two workers never attach the same file twice. Returns the number attached.

    TransientSendError propagates (the task retries with backoff); a file that can never be had
    (gone, too large) is recorded in `data["media_failed"]` and shown as missing."""
    entry = TimelineEntry.objects.select_related("channel").filter(pk=entry_id).first()
    if entry is None or entry.channel is None:
        return 0
    attached = 0
    for item in list(entry.data.get(PENDING, [])):
        try:
            downloaded = fetch(entry.channel, item)
            error = ""
        except MediaUnavailable as exc:
            downloaded, error = None, str(exc)
        with transaction.atomic():
            locked = TimelineEntry.objects.select_for_update(no_key=True).get(pk=entry_id)
            pending = locked.data.get(PENDING, [])
            if item not in pending:
                continue  # another worker stored it meanwhile
            data = {**locked.data, PENDING: [i for i in pending if i != item]}
            if not data[PENDING]:
                del data[PENDING]
            if downloaded is not None:
                try:
                    attachment_store(
                        entry=locked, filename=item.get("filename") or "attachment", data=downloaded.data,
                        claimed_type=downloaded.content_type,
                    )
                    attached += 1
                except AttachmentRejected as exc:
                    error = str(exc)
            if error:
                data[FAILED] = [*locked.data.get(FAILED, []), {"filename": item.get("filename", ""), "error": error[:300]}]
            locked.data = data
            locked.save(update_fields=["data"])
            _bump_ticket(locked.ticket_id)
    return attached


def _bump_ticket(ticket_id: int) -> None:
    Ticket.objects.filter(pk=ticket_id).update(version=F("version") + 1)
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is not None:
        events.publish_ticket_event("timeline.appended", ticket)


def inbound_entry_for(*, channel: Channel, provider_message_id: str) -> TimelineEntry | None:
    return TimelineEntry.objects.filter(
        channel=channel, direction=TimelineEntry.Direction.INBOUND, provider_message_id=provider_message_id[:255]
    ).first()


def entry_record_edit(*, channel: Channel, provider_message_id: str, text: str, at: datetime | None) -> bool:
    """The sender edited a message: the timeline shows the new text and keeps the earlier ones.
    A repeated edit report changes nothing. False when the message is not on a timeline."""
    entry = inbound_entry_for(channel=channel, provider_message_id=provider_message_id)
    if entry is None:
        return False
    if entry.text == text:
        return True
    history = [*entry.data.get("edits", []), {"text": entry.text, "replaced_at": (at or timezone.now()).isoformat()}]
    entry.text, entry.data = text, {**entry.data, "edits": history[-20:], "edited_at": (at or timezone.now()).isoformat()}
    entry.save(update_fields=["text", "data"])
    _bump_ticket(entry.ticket_id)
    return True


def entry_record_deleted(*, channel: Channel, provider_message_id: str, at: datetime | None) -> bool:
    """The sender unsent a message. Agents keep what they were shown (the record of what was
    said) and see that the customer withdrew it."""
    entry = inbound_entry_for(channel=channel, provider_message_id=provider_message_id)
    if entry is None:
        return False
    if not entry.data.get("deleted_by_sender_at"):
        entry.data = {**entry.data, "deleted_by_sender_at": (at or timezone.now()).isoformat()}
        entry.save(update_fields=["data"])
        _bump_ticket(entry.ticket_id)
    return True


def outbound_mark(
    *, channel: Channel, recipient: Identity | None, status: str, provider_message_ids: list[str] = (),
    until: datetime | None = None,
) -> int:
    """A read or delivery report: the named messages, and every message we sent to `recipient`
    on this channel up to `until` (Messenger's watermark), move forward to `status`. Never back."""
    ids: set[int] = set()
    outbound = TimelineEntry.objects.filter(
        channel=channel, direction=TimelineEntry.Direction.OUTBOUND,
        delivery_status__in=[D.SENDING, D.UNKNOWN, D.SENT, D.DELIVERED] + ([D.FAILED] if status != D.SENT else []),
    )
    if provider_message_ids:
        ids.update(outbound.filter(provider_message_id__in=list(provider_message_ids)).values_list("pk", flat=True))
    if until is not None and recipient is not None:
        ids.update(
            outbound.filter(identity=recipient, sent_at__lte=until).exclude(sent_at=None)
            .values_list("pk", flat=True)[:500]
        )
    return sum(message_status_apply(entry_id=pk, status=status) for pk in sorted(ids))


def window_extend(*, identity: Identity, channel_kind: str, last_message_at: datetime, hours: int = 24) -> None:
    """The customer wrote: the customer-care window of (identity, channel kind) runs `hours` from
    their message. Only ever moves later (messages may be processed out of order)."""
    from customers.services import contact_window_extend

    contact_window_extend(identity=identity, channel_kind=channel_kind, until=last_message_at + timedelta(hours=hours))


def window_last_message_at(*, identity: Identity, channel_kind: str, hours: int = 24) -> datetime | None:
    """When the customer last wrote on this kind of channel (from the window), or None."""
    expires = (
        ContactPreference.objects.filter(identity=identity, channel_kind=channel_kind)
        .values_list("window_expires_at", flat=True).first()
    )
    return expires - timedelta(hours=hours) if expires else None

