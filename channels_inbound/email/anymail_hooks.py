"""anymail's inbound and tracking webhooks (under /anymail/) feeding the email channels.

anymail's own views check each ESP's webhook auth (Mailgun's HMAC signature, the shared basic-auth
WEBHOOK_SECRET) and answer 400 before any signal is sent; these receivers only run for verified
requests. Inbound mail is routed to the active email channel whose address or aliases match one of
its recipients and stored raw, under the same dedup key as IMAP polling, so a mail that arrives both
ways (or twice from the ESP) is stored once. Tracking events move the outbound message's delivery
state through the monotonic `message_status_apply`; a spam complaint is noted on the message
(`message_complaint_record`) without changing its delivery state. Both show live.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from anymail.signals import EventType, inbound, tracking

from channels_inbound.delivery import message_complaint_record, message_status_apply
from channels_inbound.email.imap import email_external_id
from channels_inbound.email.outbound import TOKEN_RE
from channels_inbound.models import Channel
from channels_inbound.services import inbound_event_store
from tickets.models import TimelineEntry

if TYPE_CHECKING:
    from anymail.inbound import AnymailInboundMessage
    from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent

logger = logging.getLogger(__name__)

D = TimelineEntry.Delivery
STATUS_FOR_EVENT = {
    EventType.DELIVERED: D.DELIVERED,
    EventType.OPENED: D.READ,
    EventType.BOUNCED: D.FAILED,
    EventType.REJECTED: D.FAILED,
    EventType.FAILED: D.FAILED,
}


def _normalize(address: str) -> str:
    """Lower-cased, without the ticket tag of a reply address (support+t-<hex>@ -> support@)."""
    return TOKEN_RE.sub("@", (address or "").strip()).lower()


def recipients_of(message: AnymailInboundMessage) -> list[str]:
    """Every address the mail was delivered to: envelope recipient first, then To and Cc."""
    found = [message.envelope_recipient or ""]
    for header in ("to", "cc"):
        try:
            found += [address.addr_spec for address in getattr(message, header)]
        except Exception:  # an unparseable header in a customer's mail: the other fields may still match
            logger.info("unreadable %s header in an inbound ESP mail", header, exc_info=True)
    return [a for a in dict.fromkeys(_normalize(a) for a in found) if a]


def channel_for_recipients(recipients: list[str]) -> Channel | None:
    """The active email channel whose address or aliases match the first matching recipient."""
    by_address: dict[str, Channel] = {}
    for channel in Channel.objects.filter(kind=Channel.Kind.EMAIL, is_active=True).order_by("pk"):
        data = channel.settings or {}
        for address in [data.get("address") or "", *(data.get("aliases") or [])]:
            by_address.setdefault(_normalize(address), channel)
    for recipient in recipients:
        if recipient in by_address:
            return by_address[recipient]
    return None


def handle_inbound(sender, event: AnymailInboundEvent, esp_name: str, **kwargs) -> None:
    message = event.message
    if message is None:
        return
    recipients = recipients_of(message)
    channel = channel_for_recipients(recipients)
    if channel is None:
        # The ESP still gets its 200: retrying cannot make an unknown address known.
        logger.warning("%s inbound mail for %s matches no active email channel; ignored",
                       esp_name, ", ".join(recipients) or "no recipient")
        return
    raw = message.as_bytes()
    _event, created = inbound_event_store(
        channel=channel, external_id=email_external_id(raw),
        payload={"raw_b64": base64.b64encode(raw).decode("ascii"), "esp": esp_name},
    )
    if not created:
        logger.info("%s inbound mail %s for channel %s was already stored", esp_name, event.event_id, channel.pk)


def _bare(message_id: str) -> str:
    return (message_id or "").strip().strip("<>").strip()


def entry_for_message_id(message_id: str) -> TimelineEntry | None:
    bare = _bare(message_id)
    if not bare:
        return None
    outbound = TimelineEntry.objects.filter(channel__kind=Channel.Kind.EMAIL, direction=TimelineEntry.Direction.OUTBOUND)
    return (outbound.filter(provider_message_id=bare).first()
            or outbound.filter(data__esp_message_id__in=[bare, f"<{bare}>"]).first())


def handle_tracking(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    if event.event_type == EventType.COMPLAINED:
        entry = entry_for_message_id(str(event.message_id or ""))
        logger.warning("%s reports a spam complaint from %s about message %s%s", esp_name, event.recipient,
                       event.message_id, "" if entry else " (unknown; ignored)")
        if entry is not None:
            message_complaint_record(entry_id=entry.pk, recipient=str(event.recipient or ""), provider=esp_name)
        return
    status = STATUS_FOR_EVENT.get(event.event_type)
    if status is None:
        return
    entry = entry_for_message_id(str(event.message_id or ""))
    if entry is None:
        logger.info("%s %s event for unknown message %s; ignored", esp_name, event.event_type, event.message_id)
        return
    error = ""
    if status == D.FAILED:
        error = " ".join(str(part) for part in (event.description, event.mta_response) if part) or str(event.event_type)
    message_status_apply(entry_id=entry.pk, status=status, error=error)


def connect() -> None:
    import warnings

    from anymail.exceptions import AnymailInsecureWebhookWarning

    # A webhook view that would accept unauthenticated posts fails instead of warning.
    warnings.filterwarnings("error", category=AnymailInsecureWebhookWarning)
    inbound.connect(handle_inbound, dispatch_uid="omnicenter.email.anymail_inbound")
    tracking.connect(handle_tracking, dispatch_uid="omnicenter.email.anymail_tracking")
