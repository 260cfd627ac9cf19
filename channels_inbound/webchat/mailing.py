"""Email from the web chat (docs/channels/webchat.md, "Email"): the transcript a visitor asks for,
the one-time code that confirms a visitor's email, and agent replies to visitors who have left.

Every email is recorded first as a system event on the ticket (`data.action` `webchat_transcript`,
`webchat_replies_emailed` or `webchat_email_verified`) and sent after commit by the task
`send_webchat_email(event id)`, with retries; the event's `data.state` follows the send (queued,
sent, failed). Email goes out through an email channel's own sending (its SMTP server or ESP,
`send_text`): the chat channel's `email_channel` setting if it names one that can send, else the
first active email channel that can, else Django's default mailer, as the portal's notifications do.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import formats, timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from channels_inbound import registry
from channels_inbound.base import PermanentSendError, TransientSendError
from channels_inbound.delivery import secret_send
from channels_inbound.models import Channel, WebchatEmailCode
from channels_inbound.webchat import services
from channels_inbound.webchat.services import WebchatError, rate_allow, visitor_group
from channels_inbound.webchat.tokens import Visitor
from customers import identities
from customers.models import Identity
from omnicenter import crypto, events
from tickets.models import Ticket, TimelineEntry

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
HOUR = 3600
TRANSCRIPT_LIMIT = 1000  # messages in one transcript
TRANSCRIPT = "webchat_transcript"
REPLIES = "webchat_replies_emailed"
VERIFIED = "webchat_email_verified"


def _email(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebchatError("invalid_email", _("Enter your email address."))
    if len(value) > 254:
        raise WebchatError("invalid_email", _("That email address is too long."))
    try:
        return identities.normalize_email(value)
    except identities.InvalidIdentity as exc:
        raise WebchatError("invalid_email", exc.message) from exc


def _language(channel: Channel) -> str:
    return (channel.settings or {}).get("language") or settings.LANGUAGE_CODE


def _zone(name: object, channel: Channel) -> str:
    """The visitor's time zone as their browser reported it, else the channel's business hours', else UTC."""
    for candidate in (name, ((channel.settings or {}).get("business_hours") or {}).get("timezone")):
        if isinstance(candidate, str) and 0 < len(candidate) <= 64:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return "UTC"


def _record(ticket_id: int, *, action: str, data: dict) -> TimelineEntry:
    """A system event on the ticket's timeline, shown live to the agents who may see the ticket."""
    from tickets.services import _bump, _event_entry, _lock

    ticket = _lock(ticket_id)
    entry = _event_entry(ticket, by=None, action=action, data=data)
    _bump(ticket)
    events.publish_ticket_event("timeline.appended", ticket)
    return entry


def _enqueue(event_id: int) -> None:
    from channels_inbound.tasks import send_webchat_email

    transaction.on_commit(lambda: send_webchat_email.delay(event_id), robust=True)


# --- transcripts ---------------------------------------------------------------------------------

@transaction.atomic
def transcript_request(*, channel: Channel, visitor: Visitor, email: object, ip: str, tz: object = "") -> str:
    """The visitor asks for their conversation by email. What is sent is what the widget shows
    them (services.visible_entries): an unverified visitor gets only their own conversation,
    whatever address they type. Recorded on the ticket; sent by the task. Returns the address."""
    address = _email(email)
    group = visitor_group(channel.key, visitor.id)
    if not (rate_allow(f"transcript:{group}", settings.WEBCHAT_RATE_TRANSCRIPTS, HOUR)
            and rate_allow(f"transcript-ip:{ip}", settings.WEBCHAT_RATE_TRANSCRIPTS_IP, HOUR)):
        raise WebchatError("rate_limited", _("You have asked for the transcript too often; try again later."))
    ticket = services.visitor_ticket(visitor)
    if ticket is None:
        raise WebchatError("no_conversation", _("There is no conversation to send yet."))
    verified_email = services.visitor_verified_email(visitor, services.visitor_identity(visitor))
    entry = _record(ticket.pk, action=TRANSCRIPT, data={
        "to": address, "verified": address == verified_email, "channel": channel.pk, "visitor": visitor.id,
        "tz": _zone(tz, channel), "state": "queued",
    })
    _enqueue(entry.pk)
    return address


def _who(frame: dict, channel: Channel) -> str:
    if frame["from"] == "visitor":
        return _("You")
    return frame["author"] or (channel.settings or {}).get("team_name") or _("Support")


def _message_block(frame: dict, channel: Channel, zone: ZoneInfo) -> str:
    from django.utils.dateparse import parse_datetime

    when = parse_datetime(frame["at"])
    stamp = formats.date_format(timezone.localtime(when, zone), "DATETIME_FORMAT") if when else ""
    lines = [f"{stamp} · {_who(frame, channel)}"]
    if frame["text"]:
        lines.append(frame["text"])
    for attachment in frame["attachments"]:
        lines.append(_("File: %(name)s %(url)s") % {"name": attachment["name"], "url": attachment["url"]})
    return "\n".join(lines)


def _transcript(channel: Channel, visitor: Visitor, zone_name: str) -> tuple[str, str]:
    team = (channel.settings or {}).get("team_name") or channel.name
    frames = services.conversation_history(visitor=visitor, limit=TRANSCRIPT_LIMIT)
    zone = ZoneInfo(zone_name)
    subject = _("Your chat with %(team)s") % {"team": team}
    head = _("Here is your conversation with %(team)s. Times are in %(zone)s.") % {"team": team, "zone": zone_name}
    body = "\n\n".join(_message_block(f, channel, zone) for f in frames)
    foot = _("You get this email because this address was entered in the chat on our website.")
    return subject, f"{head}\n\n{body}\n\n-- \n{foot}\n"


# --- replies to visitors who left ----------------------------------------------------------------

def offline_emails_enabled(channel: Channel) -> bool:
    return (channel.settings or {}).get("email_offline_replies", True) is not False


def _pending_key(channel_key: str, ticket_id: int, visitor_id: str) -> str:
    return f"webchat-offline-mail:{visitor_group(channel_key, visitor_id)}:{ticket_id}"


def offline_reply_schedule(*, entry: TimelineEntry) -> bool:
    """An agent's reply was pushed to a visitor who is not connected: email it later, together
    with the replies that follow it, unless the visitor comes back and sees them first. One pending
    email per (visitor, ticket): the first reply of a batch schedules it, the next ones join it."""
    from channels_inbound.tasks import email_offline_replies

    channel, identity = entry.channel, entry.identity
    if (channel is None or identity is None or identity.kind != Identity.Kind.VISITOR or entry.author_user_id is None
            or entry.is_auto_reply or not offline_emails_enabled(channel)):
        return False
    if services.visitor_is_online(channel_key=channel.key, visitor_id=identity.value):
        return False
    delay = settings.WEBCHAT_OFFLINE_EMAIL_DELAY
    if not cache.add(_pending_key(channel.key, entry.ticket_id, identity.value), 1, delay + 60):
        return False  # a batch is already waiting
    try:
        email_offline_replies.apply_async(args=[entry.pk], countdown=delay, retry=False)
    except Exception:
        cache.delete(_pending_key(channel.key, entry.ticket_id, identity.value))
        logger.warning("could not schedule the offline email for %s", entry.pk, exc_info=True)
        return False
    return True


def _offline_address(visitor: Visitor, identity: Identity, ticket: Ticket) -> str:
    """Where an offline visitor's replies go: the email they confirmed (or, signed in on the site,
    their verified email), else the one they typed in this conversation: in the pre-chat or "leave a
    message" form, else for its transcript."""
    address = services.visitor_verified_email(visitor, identity) or services.visitor_typed_email(visitor, ticket)
    if not address:
        address = (ticket.entries.filter(kind=TimelineEntry.Kind.EVENT, data__action=TRANSCRIPT, data__visitor=visitor.id)
                   .order_by("-created_at", "-pk").values_list("data__to", flat=True).first()) or ""
    return address if isinstance(address, str) else ""


def offline_replies_collect(*, entry_id: int) -> TimelineEntry | None:
    """The batch's delay is over: claim the agent replies on this ticket that the visitor has not
    read and that no earlier email carried, record them as emailed, and queue the email. Nothing if
    the visitor is back (they see the replies in the widget) or left no email."""
    entry = (TimelineEntry.objects.select_related("channel", "identity").filter(pk=entry_id).first())
    if entry is None or entry.channel is None or entry.identity is None:
        return None
    channel, identity = entry.channel, entry.identity
    # From here on a new reply starts a new batch.
    cache.delete(_pending_key(channel.key, entry.ticket_id, identity.value))
    if not channel.is_active or not offline_emails_enabled(channel):
        return None
    if services.visitor_is_online(channel_key=channel.key, visitor_id=identity.value):
        return None
    visitor = Visitor(channel_key=channel.key, id=identity.value)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=entry.ticket_id)
        address = _offline_address(visitor, identity, ticket)
        if not address:
            return None
        emailed = set()
        for data in ticket.entries.filter(kind=TimelineEntry.Kind.EVENT, data__action=REPLIES).values_list("data", flat=True):
            emailed.update(data.get("entries") or [])
        replies = list(
            ticket.entries.filter(
                kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.OUTBOUND, channel=channel,
                identity=identity, author_user__isnull=False, is_auto_reply=False,
                delivery_status__in=[TimelineEntry.Delivery.SENDING, TimelineEntry.Delivery.SENT],
            ).exclude(pk__in=emailed).order_by("created_at", "pk").values_list("pk", flat=True)
        )
        if not replies:
            return None
        event = _record(ticket.pk, action=REPLIES, data={
            "to": address, "entries": replies, "count": len(replies), "channel": channel.pk, "visitor": visitor.id,
            "tz": _zone(None, channel), "state": "queued",
        })
        _enqueue(event.pk)
    return event


def _conversation_link(visitor: Visitor, ticket_id: int) -> str:
    """The page of the site the visitor last wrote from; the widget opens itself on #omnicenter-chat."""
    page = (
        services._entries(visitor).filter(ticket_id=ticket_id, direction=TimelineEntry.Direction.INBOUND,
                                          inbound_event__payload__page__isnull=False)
        .order_by("-created_at", "-pk").values_list("inbound_event__payload__page", flat=True).first()
    )
    if not isinstance(page, str) or not page:
        return ""
    return page.split("#", 1)[0] + "#omnicenter-chat"


def _replies_text(event: TimelineEntry, channel: Channel) -> tuple[str, str] | None:
    data = event.data
    entries = list(
        TimelineEntry.objects.filter(pk__in=data.get("entries") or [], ticket_id=event.ticket_id,
                                     kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.OUTBOUND)
        .select_related("author_user").prefetch_related("attachments").order_by("created_at", "pk")
    )
    if not entries:
        return None
    team = (channel.settings or {}).get("team_name") or channel.name
    zone = ZoneInfo(_zone(data.get("tz"), channel))
    subject = ngettext("A new reply from %(team)s", "New replies from %(team)s", len(entries)) % {"team": team}
    head = ngettext("You left the chat before we answered. Here is our reply:",
                    "You left the chat before we answered. Here are our replies:", len(entries))
    body = "\n\n".join(_message_block(services.message_frame(e), channel, zone) for e in entries)
    link = _conversation_link(Visitor(channel_key=channel.key, id=data.get("visitor", "")), event.ticket_id)
    more = (_("Continue the conversation: %(url)s") % {"url": link}) if link else _(
        "Open the chat on our website to continue the conversation.")
    foot = _("You get this email because this address was entered in the chat on our website.")
    return subject, f"{head}\n\n{body}\n\n{more}\n\n-- \n{foot}\n"


# --- one-time codes ------------------------------------------------------------------------------

def _code_hash(channel_id: int, visitor_id: str, email: str, code: str) -> str:
    # Binds the code to one channel, one visitor and one address.
    return salted_hmac("omnicenter.webchat.email-code", f"{channel_id}:{visitor_id}:{email}:{code}",
                       algorithm="sha256").hexdigest()


@transaction.atomic
def email_code_request(*, channel: Channel, visitor: Visitor, email: object, ip: str) -> WebchatEmailCode:
    """Email a 6-digit code that confirms `email` for this visitor. Only the newest code of a
    visitor works. Rate-limited per visitor, per address and per IP."""
    address = _email(email)
    group = visitor_group(channel.key, visitor.id)
    if not (rate_allow(f"code:{group}", settings.WEBCHAT_RATE_EMAIL_CODES, HOUR)
            and rate_allow(f"code-to:{address}", settings.WEBCHAT_RATE_EMAIL_CODES, HOUR)
            and rate_allow(f"code-ip:{ip}", settings.WEBCHAT_RATE_EMAIL_CODES_IP, HOUR)):
        raise WebchatError("rate_limited", _("Too many codes were asked for; try again later."))
    now = timezone.now()
    WebchatEmailCode.objects.filter(channel=channel, visitor=visitor.id, used_at__isnull=True,
                                    expires_at__gt=now).update(expires_at=now, outbox="")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = WebchatEmailCode.objects.create(
        channel=channel, visitor=visitor.id, email=address, code_hash=_code_hash(channel.pk, visitor.id, address, code),
        outbox=crypto.encrypt_json({"code": code}), language=_language(channel)[:8],
        expires_at=now + timedelta(minutes=settings.WEBCHAT_EMAIL_CODE_MINUTES),
    )
    from channels_inbound.tasks import send_webchat_email_code

    transaction.on_commit(lambda: send_webchat_email_code.delay(row.pk), robust=True)
    return row


def email_code_send(*, code_id: int, final_attempt: bool) -> str:
    row = WebchatEmailCode.objects.select_related("channel").filter(pk=code_id).first()
    if row is None or not row.outbox or row.used_at or row.expires_at <= timezone.now():
        return "skipped"
    code = crypto.decrypt_json(row.outbox)["code"]
    with translation.override(row.language or None):
        subject = _("Your code: %(code)s") % {"code": code}
        text = _(
            "Enter this code in the chat to confirm your email address:\n\n%(code)s\n\n"
            "It works once, within %(minutes)s minutes. Do not give it to anyone: we never ask for it. "
            "If you did not ask for it, ignore this message."
        ) % {"code": code, "minutes": settings.WEBCHAT_EMAIL_CODE_MINUTES}
    return secret_send(
        WebchatEmailCode.objects.filter(pk=code_id),
        lambda: email_send(channel=row.channel, address=row.email, subject=subject, text=text),
        final_attempt=final_attempt, what=f"web chat email code {code_id}",
    )


PURGE_BATCH = 1000


def email_codes_purge(*, batch: int = PURGE_BATCH) -> int:
    """Periodic: delete codes that were never used and expired more than a day ago, a batch at a
    time. Used codes stay: each is the record that a visitor proved an address."""
    cutoff = timezone.now() - timedelta(days=1)
    ids = list(WebchatEmailCode.objects.filter(used_at__isnull=True, expires_at__lt=cutoff)
               .order_by("pk").values_list("pk", flat=True)[:batch])
    return WebchatEmailCode.objects.filter(pk__in=ids).delete()[0] if ids else 0


@transaction.atomic
def _code_check(*, channel: Channel, visitor: Visitor, address: str, code: str) -> str | WebchatEmailCode:
    """"wrong", "expired", "attempts" or the code row, now used. A wrong guess's count is kept: the
    caller raises only after this returns."""
    live = list(WebchatEmailCode.objects.select_for_update().filter(
        channel=channel, visitor=visitor.id, used_at__isnull=True, expires_at__gt=timezone.now(),
    ))
    for_address = [row for row in live if row.email == address]
    usable = [row for row in for_address if row.attempts < settings.WEBCHAT_EMAIL_CODE_ATTEMPTS]
    if not usable:
        return "attempts" if for_address else "expired"
    given = _code_hash(channel.pk, visitor.id, address, code) if len(code) == CODE_DIGITS else ""
    match = next((row for row in usable if given and hmac.compare_digest(row.code_hash, given)), None)
    if match is None:
        # A wrong guess counts against every live code of this visitor.
        WebchatEmailCode.objects.filter(pk__in=[row.pk for row in live]).update(attempts=F("attempts") + 1)
        return "wrong"
    match.used_at = timezone.now()
    match.outbox = ""
    match.save(update_fields=["used_at", "outbox"])
    return match


def email_code_confirm(*, channel: Channel, visitor: Visitor, email: object, code: object, ip: str) -> dict:
    """The visitor types the code they got. Right: the email becomes a verified identity and the
    visitor is linked to the customer who holds it (customers.services.identity_confirm); the
    answer carries the personal greeting and the history they may now see. Wrong or expired: an
    error, and nothing but the attempt count changes."""
    address = _email(email)
    digits = "".join(ch for ch in code if ch.isdigit()) if isinstance(code, str) else ""
    group = visitor_group(channel.key, visitor.id)
    if not (rate_allow(f"code-check:{group}", settings.WEBCHAT_RATE_CODE_CHECKS, HOUR)
            and rate_allow(f"code-check-ip:{ip}", settings.WEBCHAT_RATE_CODE_CHECKS * 3, HOUR)):
        raise WebchatError("rate_limited", _("Too many tries; ask for a new code later."))
    with transaction.atomic():
        result = _code_check(channel=channel, visitor=visitor, address=address, code=digits)
        if isinstance(result, WebchatEmailCode):
            # The code is used up only if the link is made too.
            _link(channel=channel, visitor=visitor, address=address)
    if result == "wrong":
        raise WebchatError("code_wrong", _("That code is not right. Check it and try again."))
    if result == "attempts":
        raise WebchatError("code_attempts", _("Too many wrong tries. Ask for a new code."))
    if result == "expired":
        raise WebchatError("code_expired", _("This code has expired or was already used. Ask for a new one."))
    welcome = services.visitor_welcome(channel=channel, visitor=visitor)
    return {"email": address, "greeting": welcome["greeting"], "history": welcome["history"],
            "visitor": welcome["visitor"]}


@transaction.atomic
def _link(*, channel: Channel, visitor: Visitor, address: str) -> None:
    from channels_inbound.webchat.adapter import visitor_claim
    from customers.services import customer_resolve, identity_confirm

    claim = identities.claim(Identity.Kind.EMAIL, address)
    identity = services.visitor_identity(visitor)
    merged = suggested = False
    if identity is None:
        # Not a word written yet: the visitor is whoever holds the address (or someone new).
        customer_resolve(claims=[visitor_claim(channel, visitor.id), claim], language=_language(channel))
    else:
        confirmation = identity_confirm(customer=identity.customer, claim=claim)
        merged, suggested = confirmation.merge is not None, confirmation.suggested
    ticket = services.visitor_ticket(visitor)
    if ticket is not None:
        _record(ticket.pk, action=VERIFIED, data={"email": address, "merged": merged, "suggested": suggested,
                                                  "visitor": visitor.id})


# --- sending -------------------------------------------------------------------------------------

def _mail_channel(channel: Channel) -> Channel | None:
    from tickets.portal.notify import _can_send

    key = ((channel.settings or {}).get("email_channel") or "").strip()
    if key:
        chosen = Channel.objects.filter(key=key, kind=Channel.Kind.EMAIL).first()
        if _can_send(chosen):
            return chosen
    for candidate in Channel.objects.filter(kind=Channel.Kind.EMAIL, is_active=True).order_by("pk"):
        if _can_send(candidate):
            return candidate
    return None


def email_send(*, channel: Channel, address: str, subject: str, text: str) -> None:
    """Send through an email channel's own sending, else Django's mailer. Raises TransientSendError
    or PermanentSendError."""
    from tickets.portal.notify import _send_default_mail

    mail_channel = _mail_channel(channel)
    if mail_channel is None:
        _send_default_mail(address, text, subject)
        return
    registry.adapter_for(mail_channel.kind).send_text(mail_channel, address, text, subject=subject)


def _state(event: TimelineEntry, state: str, error: str = "") -> None:
    from tickets.services import _bump

    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=event.ticket_id)
        data = {**event.data, "state": state, **({"error": error[:300]} if error else {})}
        TimelineEntry.objects.filter(pk=event.pk).update(data=data)
        _bump(ticket)
        events.publish_ticket_event("timeline.appended", ticket)


def event_email_send(*, event_id: int, final_attempt: bool) -> str:
    """Send the email a transcript or replies event stands for; the event records the outcome."""
    event = TimelineEntry.objects.filter(pk=event_id, kind=TimelineEntry.Kind.EVENT,
                                         data__action__in=[TRANSCRIPT, REPLIES]).first()
    if event is None or event.data.get("state") not in ("queued", "retrying"):
        return "skipped"
    channel = Channel.objects.filter(pk=event.data.get("channel")).first()
    if channel is None:
        _state(event, "failed", "the chat channel is gone")
        return "failed"
    with translation.override(_language(channel)):
        if event.data["action"] == TRANSCRIPT:
            visitor = Visitor(channel_key=channel.key, id=event.data.get("visitor", ""))
            subject, text = _transcript(channel, visitor, _zone(event.data.get("tz"), channel))
        else:
            built = _replies_text(event, channel)
            if built is None:
                _state(event, "failed", "the replies are gone")
                return "failed"
            subject, text = built
    try:
        email_send(channel=channel, address=event.data["to"], subject=subject, text=text)
    except TransientSendError as exc:
        if not final_attempt:
            TimelineEntry.objects.filter(pk=event_id).update(data={**event.data, "state": "retrying"})
            raise
        _state(event, "failed", str(exc))
        return "failed"
    except PermanentSendError as exc:
        logger.warning("web chat email %s not sent: %s", event_id, exc)
        _state(event, "failed", str(exc))
        return "failed"
    _state(event, "sent")
    return "sent"


# --- frames from the widget ----------------------------------------------------------------------

REQUEST_FRAMES = ("transcript", "email_code", "email_confirm")


def visitor_request(*, channel: Channel, visitor: Visitor, frame: dict, ip: str) -> dict:
    """One of REQUEST_FRAMES from the widget (socket or HTTP fallback): the answer frame. Raises
    WebchatError for the error frame."""
    kind, ref = frame.get("type"), frame.get("id") if isinstance(frame.get("id"), str) else ""
    if kind == "transcript":
        address = transcript_request(channel=channel, visitor=visitor, email=frame.get("email"), ip=ip, tz=frame.get("tz"))
        return {"type": "transcript_queued", "id": ref, "email": address}
    if kind == "email_code":
        row = email_code_request(channel=channel, visitor=visitor, email=frame.get("email"), ip=ip)
        return {"type": "email_code_sent", "id": ref, "email": row.email, "minutes": settings.WEBCHAT_EMAIL_CODE_MINUTES}
    if kind == "email_confirm":
        result = email_code_confirm(channel=channel, visitor=visitor, email=frame.get("email"), code=frame.get("code"), ip=ip)
        return {"type": "email_verified", "id": ref, **result}
    raise WebchatError("bad_request", _("Unknown frame type."))
