"""SMS and WhatsApp: inbound parsing, opt-outs, the WhatsApp window, statuses and media (services).

Opt-outs and windows live on `customers.ContactPreference`, per (phone identity, channel kind):
`opted_out_at` is set by STOP (and the other keywords Twilio honors) and cleared by START;
`window_expires_at` is the end of WhatsApp's 24-hour customer-service window, moved by every
message the customer sends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_inbound.base import NormalizedMessage, PermanentSendError, Unprocessable
from channels_inbound.models import Channel, InboundEvent
from customers import identities
from customers.models import ContactPreference, Identity
from customers.services import contact_window_extend
from omnicenter.errors import Conflict, DomainError
from tickets.models import TimelineEntry

logger = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)
#: Twilio's "the recipient opted out" (21610: replied STOP at the carrier, or unsubscribed).
OPTED_OUT_ERRORS = {21610}
# Keywords Twilio's default and Advanced Opt-Out honor, with the localized ones it documents.
OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
           "ARRET", "ARRÊT", "BAJA", "PARAR", "ALTO", "DETENER", "STOPP", "ANNULLA", "CANCELAR"}
OPT_IN = {"START", "YES", "UNSTOP", "SUBSCRIBE", "OPTIN", "INICIO", "ALTA", "ARRIBA", "DEMARRER", "DÉMARRER"}
HELP = {"HELP", "INFO", "AIDE", "AYUDA", "HILFE", "AIUTO"}
# Twilio's status words, in our delivery vocabulary; queued/accepted/sending add nothing to "sent".
STATUS_MAP = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "undelivered": "failed"}


class RecipientOptedOut(Conflict):
    code = "opted_out"


class StatusForUnknownMessage(Exception):
    """A status callback overtook the send it reports on: the event is retried with backoff and
    applied once the message has its Twilio SID."""


def keyword_of(payload: dict) -> str:
    """"stop", "start", "help" or ""; Twilio's own OptOutType wins over our reading of the text."""
    stated = (payload.get("OptOutType") or "").upper()
    if stated in ("STOP", "START", "HELP"):
        return stated.lower()
    word = (payload.get("Body") or "").strip().upper().rstrip(".!")
    if word in OPT_OUT:
        return "stop"
    if word in OPT_IN:
        return "start"
    if word in HELP:
        return "help"
    return ""


STATUS_EVENT_PREFIX = "status:"


def parse(event: InboundEvent) -> list[NormalizedMessage]:
    if event.external_id.startswith(STATUS_EVENT_PREFIX):
        status_apply(event=event)
        return []
    payload = event.payload
    sender = payload.get("From") or ""
    try:
        claim = identities.claim(Identity.Kind.PHONE, sender, display_name=payload.get("ProfileName", ""))
    except identities.InvalidIdentity as exc:
        raise Unprocessable(f"sender {sender!r} is not a phone number") from exc
    try:
        count = min(int(payload.get("NumMedia") or 0), 10)
    except ValueError:
        count = 0
    media = [
        {"url": payload[f"MediaUrl{i}"], "content_type": payload.get(f"MediaContentType{i}", ""), "state": "pending"}
        for i in range(count) if payload.get(f"MediaUrl{i}")
    ]
    data = {"twilio": {"to": payload.get("To", ""), "keyword": keyword_of(payload)}}
    if media:
        data["media"] = media
    if payload.get("MessagingServiceSid"):
        data["twilio"]["messaging_service_sid"] = payload["MessagingServiceSid"]
    return [NormalizedMessage(
        provider_message_id=event.external_id, sender=[claim], display_name=payload.get("ProfileName", ""),
        text=payload.get("Body", ""), data=data,
    )]


def after_ingest(entry: TimelineEntry) -> None:
    if entry.identity is None:
        return
    kind = entry.channel.kind
    keyword = (entry.data.get("twilio") or {}).get("keyword")
    if keyword == "stop":
        preference_opt_out(identity=entry.identity, channel_kind=kind, at=entry.created_at)
    elif keyword == "start":
        preference_opt_in(identity=entry.identity, channel_kind=kind, at=entry.created_at)
    if kind == Channel.Kind.WHATSAPP:
        window_extend(identity=entry.identity, until=entry.created_at + WHATSAPP_WINDOW)
    if any(m.get("state") == "pending" for m in entry.data.get("media") or []):
        from channels_inbound.twilio.tasks import fetch_media

        entry_id = entry.pk
        transaction.on_commit(lambda: _enqueue(fetch_media, entry_id), robust=True)


def _enqueue(task, *args) -> None:
    try:
        task.apply_async(args=list(args), retry=False)
    except Exception:
        logger.warning("could not enqueue %s%s", task.name, args, exc_info=True)


def preference_opt_out(*, identity: Identity, channel_kind: str, at: datetime | None = None) -> None:
    ContactPreference.objects.update_or_create(
        identity=identity, channel_kind=channel_kind, defaults={"opted_out_at": at or timezone.now()},
    )


def preference_opt_in(*, identity: Identity, channel_kind: str, at: datetime | None = None) -> None:
    # A START only undoes a STOP sent before it (messages may be processed out of order).
    ContactPreference.objects.filter(identity=identity, channel_kind=channel_kind,
                                     opted_out_at__lte=at or timezone.now()).update(opted_out_at=None)


def window_extend(*, identity: Identity, until: datetime, channel_kind: str = "whatsapp") -> None:
    """Open or extend the messaging window; an older message processed late never shortens it."""
    contact_window_extend(identity=identity, channel_kind=channel_kind, until=until)


def window_open_until(*, identity: Identity, channel_kind: str = "whatsapp") -> datetime | None:
    """When WhatsApp's customer-service window for this number closes; None when it is closed
    (or was never opened). The composer shows it and offers templates once it is None."""
    until = (
        ContactPreference.objects.filter(identity=identity, channel_kind=channel_kind)
        .values_list("window_expires_at", flat=True).first()
    )
    return until if until and until > timezone.now() else None


def opted_out_at(*, identity: Identity, channel_kind: str) -> datetime | None:
    return (
        ContactPreference.objects.filter(identity=identity, channel_kind=channel_kind)
        .values_list("opted_out_at", flat=True).first()
    )


def check_can_send(*, channel: Channel, identity: Identity, template: bool) -> None:
    """Refuse, with a message for the agent, what Twilio would refuse or the customer asked not to get."""
    stopped = opted_out_at(identity=identity, channel_kind=channel.kind)
    if stopped is not None:
        raise PermanentSendError(
            _("%(number)s opted out of %(kind)s messages on %(date)s (replied STOP); they must send START "
              "to receive messages again.")
            % {"number": identity.value, "kind": channel.get_kind_display(), "date": stopped.date().isoformat()}
        )
    if channel.kind == Channel.Kind.WHATSAPP and not template and window_open_until(identity=identity) is None:
        raise PermanentSendError(
            _("WhatsApp's 24-hour window with %(number)s is closed: only an approved template can be sent "
              "until the customer writes again.") % {"number": identity.value}
        )


def learn_from_refusal(*, channel: Channel, identity: Identity, error: Exception) -> None:
    """Twilio's 21610 (recipient replied STOP at the carrier) is an opt-out we did not see."""
    cause = error.__cause__
    code = getattr(cause, "code", None)
    if code in OPTED_OUT_ERRORS:
        preference_opt_out(identity=identity, channel_kind=channel.kind)


def template_send(*, ticket, by, content_sid: str, variables: dict[str, str], channel: Channel | None = None,
                  identity: Identity | None = None) -> TimelineEntry:
    """Queue an approved WhatsApp template (Content SID plus variables): the one thing that may be
    sent outside the 24-hour window."""
    from tickets.services import ticket_reply

    if not content_sid.startswith("HX") or len(content_sid) != 34:
        raise DomainError(_("A Content SID starts with HX and has 34 characters."))
    summary = _("Template %(sid)s") % {"sid": content_sid}
    if variables:
        summary += ": " + ", ".join(f"{{{{{k}}}}} = {v}" for k, v in sorted(variables.items()))
    with transaction.atomic():
        entry = ticket_reply(ticket=ticket, by=by, text=summary, channel=channel, identity=identity)
        if entry.channel.kind != Channel.Kind.WHATSAPP:
            raise DomainError(_("Templates are sent on WhatsApp channels only."))
        entry.data = {**entry.data, "template": {"content_sid": content_sid, "variables": variables}}
        entry.save(update_fields=["data"])
    return entry


def status_apply(*, event: InboundEvent) -> None:
    """A status callback, stored as an event: move the message forward (never back)."""
    from channels_inbound.delivery import message_status_apply

    payload = event.payload
    status = STATUS_MAP.get((payload.get("MessageStatus") or payload.get("SmsStatus") or "").lower())
    sid = payload.get("MessageSid") or payload.get("SmsSid") or ""
    if status is None or not sid:
        return
    entry = TimelineEntry.objects.filter(
        channel=event.channel, direction=TimelineEntry.Direction.OUTBOUND, provider_message_id=sid,
    ).only("pk").first()
    if entry is None:
        raise StatusForUnknownMessage(f"no outbound message {sid} yet")
    error = ""
    if status == "failed":
        code = payload.get("ErrorCode") or ""
        error = _("Twilio reports the message as %(status)s (error %(code)s).") % {
            "status": payload.get("MessageStatus", "failed"), "code": code or "?"}
        if code.isdigit() and int(code) in OPTED_OUT_ERRORS:
            identity = TimelineEntry.objects.get(pk=entry.pk).identity
            if identity is not None:
                preference_opt_out(identity=identity, channel_kind=event.channel.kind)
    message_status_apply(entry_id=entry.pk, status=status, error=error)


def media_download(*, entry_id: int) -> dict[str, int]:
    """Fetch an inbound message's pending media into attachments (called by the worker, outside any
    transaction). A rejected medium leaves a note on the timeline; a transient failure raises
    ConnectionError so the task retries."""
    from channels_inbound.twilio.client import MediaRejected, media_fetch
    from tickets.attachments import AttachmentRejected, attachment_store

    entry = TimelineEntry.objects.select_related("channel", "ticket").filter(pk=entry_id).first()
    if entry is None or entry.channel is None:
        return {"stored": 0, "rejected": 0}
    channel = entry.channel
    stored = rejected = 0
    media = list(entry.data.get("media") or [])
    for index, medium in enumerate(media):
        if medium.get("state") != "pending":
            continue
        try:
            fetched = media_fetch(url=medium["url"], account_sid=channel.settings.get("account_sid", ""),
                                  auth_token=channel.secret("auth_token"), max_bytes=settings.ATTACHMENT_MAX_BYTES)
            extension = (fetched.content_type or medium.get("content_type") or "").split("/")[-1].split(";")[0]
            with transaction.atomic():
                attachment_store(entry=entry, filename=f"media-{index + 1}.{extension or 'bin'}", data=fetched.data,
                                 claimed_type=fetched.content_type)
                media[index] = {**medium, "state": "stored"}
                _save_media(entry, media)
            stored += 1
        except (MediaRejected, AttachmentRejected) as exc:
            media[index] = {**medium, "state": "rejected", "error": str(exc)[:300]}
            with transaction.atomic():
                _save_media(entry, media)
                media_note(entry=entry, reason=str(exc))
            rejected += 1
    return {"stored": stored, "rejected": rejected}


def _save_media(entry: TimelineEntry, media: list[dict]) -> None:
    entry.data = {**entry.data, "media": media}
    TimelineEntry.objects.filter(pk=entry.pk).update(data=entry.data)


def media_note(*, entry: TimelineEntry, reason: str) -> TimelineEntry:
    from omnicenter import events
    from tickets.models import Ticket

    note = TimelineEntry.objects.create(
        ticket_id=entry.ticket_id, kind=TimelineEntry.Kind.EVENT,
        text=_("A file the customer sent could not be kept: %(reason)s") % {"reason": reason},
        data={"action": "media_rejected", "entry": entry.pk, "reason": reason},
    )
    ticket = Ticket.objects.get(pk=entry.ticket_id)
    events.publish_ticket_event("timeline.appended", ticket)
    return note


def connection_test(*, channel: Channel) -> tuple[bool, str]:
    """Fetch the channel's Twilio account with its credentials (the admin's "test connection")."""
    from twilio.base.exceptions import TwilioRestException

    from channels_inbound.twilio.client import rest_client

    conf = channel.settings or {}
    client = rest_client(account_sid=conf.get("account_sid", ""), auth_token=channel.secret("auth_token"))
    try:
        account = client.api.v2010.accounts(conf.get("account_sid", "")).fetch()
    except TwilioRestException as exc:
        if exc.status in (401, 403):
            return False, _("Twilio refused the Account SID and Auth Token.")
        return False, _("Twilio answered with an error (HTTP %(status)s).") % {"status": exc.status}
    except Exception as exc:  # network errors of any kind: say which, never the credentials
        return False, _("Twilio cannot be reached (%(error)s).") % {"error": exc.__class__.__name__}
    if account.status != "active":
        return False, _("The Twilio account is %(status)s.") % {"status": account.status}
    return True, _("Connected to the Twilio account “%(name)s”.") % {"name": account.friendly_name}
