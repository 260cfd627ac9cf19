"""Every write and rule of the web chat: visitor sessions, messages through the spine, live pushes
to visitors, typing, receipts, and the survey hook. The consumer and the views only call these."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db.models import Exists, OuterRef, Q, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_inbound import services as inbound
from channels_inbound.delivery import message_status_apply
from channels_inbound.models import Channel, InboundEvent, WebchatEmailCode
from channels_inbound.webchat import tokens
from channels_inbound.webchat.adapter import is_open
from channels_inbound.webchat.tokens import Visitor
from customers import identities
from customers.models import Identity
from omnicenter import events
from omnicenter.errors import DomainError, NotAllowed
from tickets.attachments import sniff_content_type
from tickets.models import CallbackRequest, Ticket, TimelineEntry

if TYPE_CHECKING:
    from omnicenter.models import User

logger = logging.getLogger(__name__)

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HISTORY_LIMIT = 100
PRESENCE_TTL = 3600
POLL_PRESENCE_TTL = 45  # a widget on the HTTP fallback polls every 4 s (15 s in a background tab)
#: what a visitor may upload: pictures, PDFs, plain text (checked on the bytes, not the claim)
ALLOWED_UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain")
MAX_UPLOADS_PER_MESSAGE = 5


class WebchatError(DomainError):
    """Refused visitor input; `code` goes into the error frame for the widget."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# --- groups and presence -------------------------------------------------------------------------

def visitor_group(channel_key: str, visitor_id: str) -> str:
    """The channel-layer group of one visitor's sockets (all their tabs)."""
    digest = hashlib.sha256(f"{channel_key}:{visitor_id}".encode()).hexdigest()[:40]
    return f"widget.{digest}"


def _presence_key(channel_key: str, visitor_id: str) -> str:
    return "webchat-online:" + visitor_group(channel_key, visitor_id)


def visitor_presence_change(*, visitor: Visitor, delta: int) -> None:
    """Count the visitor's open sockets (a crashed process leaves a count behind for PRESENCE_TTL)."""
    key = _presence_key(visitor.channel_key, visitor.id)
    if delta > 0:
        if not cache.add(key, 1, PRESENCE_TTL):
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, PRESENCE_TTL)
        cache.touch(key, PRESENCE_TTL)
    else:
        try:
            if cache.decr(key) <= 0:
                cache.delete(key)
        except ValueError:
            pass


def visitor_polled(*, visitor: Visitor) -> None:
    """A widget without websockets polled: it counts as connected for POLL_PRESENCE_TTL."""
    cache.set("webchat-polled:" + visitor_group(visitor.channel_key, visitor.id), 1, POLL_PRESENCE_TTL)


def visitor_is_online(*, channel_key: str, visitor_id: str) -> bool:
    group = visitor_group(channel_key, visitor_id)
    counts = cache.get_many(["webchat-online:" + group, "webchat-polled:" + group])
    return (counts.get("webchat-online:" + group) or 0) > 0 or bool(counts.get("webchat-polled:" + group))


def rate_allow(key: str, limit: int, window: int = 60) -> bool:
    """A fixed-window counter in the shared cache: True while `key` stays within `limit` per window."""
    return rate_allow_all([(key, limit)], window)


def rate_allow_all(limits: list[tuple[str, int]], window: int = 60) -> bool:
    """Count one attempt on each (key, limit) counter: True while every one stays within its limit
    per window. With Redis, one round trip for all of them (SET NX EX and INCR per counter);
    through Django's cache API each counter took three (ADD, EXISTS, INCR), on every chat message."""
    slot = int(timezone.now().timestamp()) // window
    keys = [f"webchat-rate:{key}:{slot}" for key, _limit in limits]
    backend = caches["default"]  # `cache` is a proxy to it
    if not isinstance(backend, RedisCache):  # embedded mode: the local-memory cache
        return all([_rate_count(key, window) <= limit for key, (_key, limit) in zip(keys, limits, strict=True)])
    pipe = backend._cache.get_client(write=True).pipeline(transaction=False)
    for key in keys:
        pipe.set(backend.make_key(key), 0, ex=window + 1, nx=True)  # a new window's counter, expiring
        pipe.incr(backend.make_key(key))
    counts = pipe.execute()[1::2]
    return all(count <= limit for count, (_key, limit) in zip(counts, limits, strict=True))


def _rate_count(key: str, window: int) -> int:
    if cache.add(key, 1, window + 1):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        return 1


# --- sessions ------------------------------------------------------------------------------------

def visitor_session_open(*, channel: Channel, token: str = "", user_id: str = "", user_hash: str = "") -> Visitor:
    """The visitor a widget speaks for: a site-verified user (their id and the site's HMAC of it), the
    holder of a still-valid token, or a new anonymous visitor."""
    if user_id:
        user_id = str(user_id).strip()
        if not user_id or len(user_id) > 200:
            raise WebchatError("bad_request", _("The user id must be 1 to 200 characters long."))
        if not tokens.identity_hash_valid(channel.secret("identity_secret"), user_id, user_hash):
            raise NotAllowed(_("The identity hash does not match this user id."))
        return Visitor(channel_key=channel.key, id=f"user:{user_id}")
    existing = tokens.read(token, channel_key=channel.key)
    # A token of a verified user only comes back with the site's hash: a user who signs out of the
    # site must not stay signed in to the chat through local storage.
    if existing is not None and not existing.verified_user:
        return existing
    return Visitor(channel_key=channel.key, id=tokens.new_anonymous_id())


def visitor_identity(visitor: Visitor) -> Identity | None:
    """The visitor's identity, with `code_proof`: whether they ever confirmed an email by a code
    (in the same query: most never do, and the welcome frame then needs no look at the codes)."""
    used_codes = WebchatEmailCode.objects.filter(channel__key=visitor.channel_key, visitor=OuterRef("value"),
                                                 used_at__isnull=False)
    return (
        Identity.objects.filter(kind=Identity.Kind.VISITOR, namespace=visitor.channel_key, value=visitor.id, verified=True)
        .select_related("customer").annotate(code_proof=Exists(used_codes)).first()
    )


def visitor_email_proof(visitor: Visitor, identity: Identity | None) -> tuple[str, bool]:
    """The email this visitor confirmed with a one-time code ("" if none), and whether that email is
    a verified identity of the visitor's own customer ("linked": they are that customer)."""
    if identity is None or getattr(identity, "code_proof", True) is False:
        return "", False  # confirming a code creates the visitor's identity: no identity, no code used
    email = (
        WebchatEmailCode.objects.filter(channel__key=visitor.channel_key, visitor=visitor.id, used_at__isnull=False)
        .order_by("-used_at").values_list("email", flat=True).first()
    ) or ""
    if not email:
        return "", False
    linked = Identity.objects.filter(kind=Identity.Kind.EMAIL, namespace="", value=email, verified=True,
                                     customer_id=identity.customer_id).exists()
    return email, linked


def visitor_is_verified(visitor: Visitor, identity: Identity | None) -> bool:
    """Verified: the site vouched for the user (identity hash), or the visitor confirmed an email
    of the customer they are by a one-time code."""
    return visitor.verified_user or visitor_email_proof(visitor, identity)[1]


def visitor_verified_email(visitor: Visitor, identity: Identity | None, proved: str | None = None) -> str:
    """The visitor's verified email ("" if none): the one they confirmed by a code; for a user the
    site vouched for, their customer's verified email. (What an unverified visitor typed, the
    widget remembers itself; the server never hands an address to someone who has not proved it.)"""
    if identity is None:
        return ""  # has written nothing yet
    if proved is None:
        proved = visitor_email_proof(visitor, identity)[0]
    if proved:
        return proved
    if visitor.verified_user:
        return (Identity.objects.filter(customer_id=identity.customer_id, kind=Identity.Kind.EMAIL, verified=True)
                .order_by("-last_seen_at", "-pk").values_list("value", flat=True).first()) or ""
    return ""


def visitor_typed_email(visitor: Visitor, ticket: Ticket | None = None) -> str:
    """The last email this visitor typed into the chat (pre-chat or "leave a message" form), on
    `ticket` when given. A claim, not proof."""
    entries = _entries(visitor).filter(direction=TimelineEntry.Direction.INBOUND,
                                       inbound_event__payload__profile__email__isnull=False)
    if ticket is not None:
        entries = entries.filter(ticket=ticket)
    email = entries.order_by("-created_at", "-pk").values_list("inbound_event__payload__profile__email", flat=True).first()
    return email if isinstance(email, str) else ""


def greeting_for(*, channel: Channel, visitor: Visitor, identity: Identity | None, verified: bool | None = None) -> str:
    """First-time visitors get the channel's welcome; a returning verified visitor a personal one."""
    conf = channel.settings or {}
    name = (identity.customer.display_name if identity else "") or (identity.display_name if identity else "")
    if verified is None:
        verified = visitor_is_verified(visitor, identity)
    if verified and identity is not None and name:
        template = conf.get("greeting_returning") or _("Welcome back, {name}!")
        return template.replace("{name}", name)
    return conf.get("greeting") or _("Hi! How can we help you?")


def visitor_welcome(*, channel: Channel, visitor: Visitor, after: str = "") -> dict:
    """The `ready` frame: greeting, whether the team is in, and the history (or the catch-up)."""
    from django.utils.translation import override

    identity = visitor_identity(visitor)
    proved, linked = visitor_email_proof(visitor, identity)
    verified = visitor.verified_user or linked
    email = visitor_verified_email(visitor, identity, proved)
    with override((channel.settings or {}).get("language") or None):
        open_now = channel_is_open(channel)
        offline = "" if open_now else ((channel.settings or {}).get("offline_message")
                                       or _("We are away right now. Leave a message and we will get back to you."))
        return {
            "type": "ready",
            "visitor": {"verified": verified, "known": identity is not None, "email": email,
                        "email_verified": bool(email)},
            "greeting": greeting_for(channel=channel, visitor=visitor, identity=identity, verified=verified),
            "open": open_now,
            "offline_message": offline,
            "history": conversation_history(visitor=visitor, after=after if isinstance(after, str) else "",
                                            identity=identity, verified=verified),
        }


# --- the conversation ----------------------------------------------------------------------------

def _entries(visitor: Visitor):
    return TimelineEntry.objects.filter(
        kind=TimelineEntry.Kind.MESSAGE, channel__key=visitor.channel_key, identity__kind=Identity.Kind.VISITOR,
        identity__namespace=visitor.channel_key, identity__value=visitor.id, identity__verified=True,
    )


def visible_entries(visitor: Visitor, identity: Identity | None = None, *, verified: bool | None = None):
    """The messages a visitor may see on this channel. Their own conversation; for a visitor who
    confirmed the email of the customer they are (one-time code), also that customer's earlier
    chats on this channel from other browsers. Never notes or events, never other channels."""
    if visitor.verified_user:
        return _entries(visitor)
    if verified is None and identity is None:
        # Most visitors never confirm an email: one look at the codes spares loading the identity.
        if not WebchatEmailCode.objects.filter(channel__key=visitor.channel_key, visitor=visitor.id,
                                               used_at__isnull=False).exists():
            return _entries(visitor)
        identity = visitor_identity(visitor)
    if identity is None:
        return _entries(visitor)
    if verified is None:
        verified = visitor_email_proof(visitor, identity)[1]
    if not verified:
        return _entries(visitor)
    return TimelineEntry.objects.filter(
        kind=TimelineEntry.Kind.MESSAGE, channel__key=visitor.channel_key, identity__kind=Identity.Kind.VISITOR,
        identity__namespace=visitor.channel_key, identity__verified=True, identity__customer_id=identity.customer_id,
    )


def conversation_history(*, visitor: Visitor, after: str = "", limit: int = HISTORY_LIMIT,
                         identity: Identity | None = None, verified: bool | None = None) -> list[dict]:
    """The visitor's messages and the replies to them on this channel, oldest first; after the
    message `after` (a public id from this same conversation) for a catch-up. Nothing else: no
    internal notes, nothing another identity of the customer wrote (visible_entries)."""
    visible = visible_entries(visitor, identity, verified=verified)
    entries = visible.select_related("author_user").prefetch_related("attachments")
    if after:
        anchor = visible.filter(public_id=after).values("created_at", "pk").first() if _is_uuid(after) else None
        if anchor is not None:
            entries = entries.filter(
                Q(created_at__gt=anchor["created_at"]) | Q(created_at=anchor["created_at"], pk__gt=anchor["pk"])
            )
    recent = list(entries.order_by("-created_at", "-pk")[:limit])
    return [message_frame(entry) for entry in reversed(recent)]


def _is_uuid(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F-]{32,36}", value or ""))


def message_frame(entry: TimelineEntry, attachments: list | None = None) -> dict:
    """One message as the widget sees it: no internal ids, no delivery errors, the agent's first name.
    `attachments`: the entry's, when the caller knows them (else read through `entry.attachments`)."""
    inbound_ = entry.direction == TimelineEntry.Direction.INBOUND
    author = "" if inbound_ or entry.author_user is None else (entry.author_user.first_name or entry.author_user.username)
    return {
        "id": str(entry.public_id),
        "client_id": (entry.data.get("webchat") or {}).get("client_id", "") if inbound_ else "",
        "from": "visitor" if inbound_ else "agent",
        "author": author,
        "text": entry.text,
        "at": entry.created_at.isoformat(),
        "status": "" if inbound_ else entry.delivery_status,
        "attachments": [
            {"name": a.filename, "type": a.content_type, "size": a.size,
             "url": settings.PUBLIC_BASE_URL + reverse("webchat-file", args=[tokens.file_token(str(a.public_id))])}
            for a in (entry.attachments.all() if attachments is None else attachments)
        ],
    }


def _clean_profile(channel: Channel, profile: object, *, offline: bool = False) -> dict:
    if not profile:
        return {}
    if not isinstance(profile, dict):
        raise WebchatError("bad_request", _("The contact details are not valid."))
    modes = (channel.settings or {}).get("prechat") or {}
    clean = {}
    for field in ("name", "email", "phone"):
        value = profile.get(field)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise WebchatError("bad_request", _("The contact details are not valid."))
        # A field the channel does not ask for is dropped, except email and phone on the
        # after-hours form ("leave a message"), which always asks for one of them.
        if modes.get(field, "off") == "off" and not (offline and field != "name"):
            continue
        if field != "name":
            try:
                value = identities.normalize(field, value)
            except identities.InvalidIdentity as exc:
                raise WebchatError(f"invalid_{field}", exc.message) from exc
        clean[field] = value.strip()
    return clean


def _clean_page(channel: Channel, page: object) -> str:
    """The page of the site the visitor writes from (a link back in emails): only a page of an
    allowed origin, else nothing."""
    from urllib.parse import urlsplit

    from channels_inbound.webchat.adapter import normalize_origin

    if not isinstance(page, str) or not page or len(page) > 1000 or any(ch.isspace() for ch in page):
        return ""
    try:
        parts = urlsplit(page)
        origin = normalize_origin(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        return ""
    return page if origin in set((channel.settings or {}).get("allowed_origins") or []) else ""


def _clean_attachments(attachments: object) -> list[dict]:
    if not attachments:
        return []
    if not isinstance(attachments, list) or len(attachments) > MAX_UPLOADS_PER_MESSAGE:
        raise WebchatError("bad_request", _("Send at most %(n)s files at once.") % {"n": MAX_UPLOADS_PER_MESSAGE})
    clean = []
    for item in attachments:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str) or not isinstance(item.get("name"), str):
            raise WebchatError("bad_request", _("The file is not valid."))
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebchatError("bad_request", _("The file is not valid.")) from exc
        if len(data) > settings.WEBCHAT_ATTACHMENT_MAX_BYTES:
            raise WebchatError("file_too_large", _("Files may be at most %(mb)s MB.")
                               % {"mb": settings.WEBCHAT_ATTACHMENT_MAX_BYTES // (1024 * 1024)})
        if sniff_content_type(data) not in ALLOWED_UPLOAD_TYPES:
            raise WebchatError("file_type", _("Only pictures, PDF and text files can be sent."))
        clean.append({"name": item["name"][:200], "type": sniff_content_type(data), "data": item["data"]})
    return clean


@dataclass
class Posted:
    frame: dict
    duplicate: bool


def visitor_message_post(
    *, channel: Channel, visitor: Visitor, client_id: str, text: object, profile: object = None,
    attachments: object = None, thread: str = "", page: object = "",
) -> Posted:
    """A visitor's message through the spine: stored as an InboundEvent unique on (channel, visitor
    and the widget's own message id), processed at once (DESIGN.md step 4), on a ticket. A repeated
    client id answers with the message already stored and changes nothing."""
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
        raise WebchatError("bad_request", _("Each message needs an id of 1 to 64 letters, digits, - or _."))
    if not isinstance(text, str):
        raise WebchatError("bad_request", _("The message text is missing."))
    text = text.strip()
    if len(text) > settings.WEBCHAT_MAX_MESSAGE_CHARS:
        raise WebchatError("too_long", _("Messages may be at most %(n)s characters long.")
                           % {"n": settings.WEBCHAT_MAX_MESSAGE_CHARS})
    clean_files = _clean_attachments(attachments)
    if not text and not clean_files:
        raise WebchatError("empty", _("Write a message or attach a file."))
    payload = {
        "visitor": visitor.id, "client_id": client_id, "text": text,
        "profile": _clean_profile(channel, profile, offline=bool(thread) or not channel_is_open(channel)),
        "attachments": clean_files, "thread": thread, "language": (channel.settings or {}).get("language", ""),
    }
    if clean_page := _clean_page(channel, page):
        payload["page"] = clean_page
    external_id = f"{visitor.id}:{client_id}"
    # Stored claimed: a drain busy with other channels' messages cannot take it before us.
    event, created = inbound.inbound_event_store(channel=channel, external_id=external_id, payload=payload, claim=True)
    entries = (
        inbound.inbound_event_process_stored(event=event, claimed=created)
        if created or event.status != InboundEvent.Status.PROCESSED else None
    )
    attachments = None
    if entries:
        entry = entries[0]
        if created and not clean_files:
            attachments = []  # a message just stored without files has none to read back
        else:
            prefetch_related_objects([entry], "attachments")
    else:  # a repeated client id, or processed elsewhere: read it back
        entry = (
            TimelineEntry.objects.filter(channel=channel, direction=TimelineEntry.Direction.INBOUND, provider_message_id=external_id)
            .prefetch_related("attachments").first()
        )
    if entry is None:
        # Stored but not processed (a database error on the way): the sweep will retry it.
        raise WebchatError("not_processed", _("Your message was received but could not be shown yet."))
    frame = message_frame(entry, attachments)
    events.send_now([visitor_group(channel.key, visitor.id)], {"type": "widget.message", "message": frame})
    return Posted(frame=frame, duplicate=not created)


def visitor_callback_request(*, channel: Channel, visitor: Visitor, client_id: str, phone: object,
                             preferred_time: object, name: object = "") -> Posted:
    """After hours: "call me back" becomes a ticket of its own, with the number to call."""
    if not isinstance(phone, str) or not phone.strip():
        raise WebchatError("invalid_phone", _("Give a phone number to call."))
    when = preferred_time.strip()[:100] if isinstance(preferred_time, str) else ""
    text = _("Callback requested: %(phone)s") % {"phone": phone.strip()[:40]}
    if when:
        text += "\n" + _("Preferred time: %(when)s") % {"when": when}
    try:
        number = identities.normalize_phone(phone)
    except identities.InvalidIdentity as exc:
        raise WebchatError("invalid_phone", str(exc)) from exc
    # A thread key of its own: the callback opens a new ticket instead of joining the chat.
    posted = visitor_message_post(channel=channel, visitor=visitor, client_id=client_id, text=text,
                                  profile={"phone": phone, "name": name or ""}, thread=f"callback:{client_id}")
    entry = TimelineEntry.objects.filter(
        channel=channel, direction=TimelineEntry.Direction.INBOUND, provider_message_id=f"{visitor.id}:{client_id}",
    ).first()
    if entry is not None and not CallbackRequest.objects.filter(ticket_id=entry.ticket_id).exists():
        # The workspace's "Callbacks due" lists it, as it does the portal's and the phone menu's.
        CallbackRequest.objects.create(ticket_id=entry.ticket_id, phone=number[:20], preferred_at=timezone.now(),
                                       note=(_("From the web chat") + (f": {when}" if when else ""))[:300])
    return posted


def visitor_push_message(*, entry: TimelineEntry) -> None:
    """Send an agent's reply to the visitor's open sockets. Offline visitors get it from the
    history when they come back (the widget catches up on every connect)."""
    identity = entry.identity
    if identity is None or identity.kind != Identity.Kind.VISITOR or entry.channel is None:
        return
    events.send_now([visitor_group(entry.channel.key, identity.value)], {"type": "widget.message", "message": message_frame(entry)})


def visitor_push_notice(*, channel: Channel, visitor_id: str, text: str) -> bool:
    if not visitor_is_online(channel_key=channel.key, visitor_id=visitor_id):
        return False
    events.send_now([visitor_group(channel.key, visitor_id)], {"type": "widget.notice", "text": text})
    return True


def visitor_receipt(*, visitor: Visitor, ids: object, status: str) -> int:
    """The widget showed (delivered) or the visitor saw (read) agent messages. Only this visitor's
    own messages move; others' ids are ignored. Returns how many moved."""
    if not isinstance(ids, list) or status not in (TimelineEntry.Delivery.DELIVERED, TimelineEntry.Delivery.READ):
        return 0
    ids = [i for i in ids[:200] if isinstance(i, str) and _is_uuid(i)]
    if not ids:
        return 0
    mine = _entries(visitor).filter(direction=TimelineEntry.Direction.OUTBOUND, public_id__in=ids).values_list("pk", flat=True)
    return sum(message_status_apply(entry_id=pk, status=status) for pk in mine)


def visitor_ticket(visitor: Visitor) -> Ticket | None:
    entry = _entries(visitor).filter(direction=TimelineEntry.Direction.INBOUND).select_related("ticket").order_by("-created_at").first()
    return entry.ticket if entry else None


TYPING_EVENT = "chat.typing"


def visitor_typing(*, visitor: Visitor) -> None:
    """Tell the agents who may see the visitor's ticket that the visitor is typing. The event has
    no `ticket` key (live.js would re-fetch on it): `chat_ticket` is read by static/webchat/agent.js."""
    ticket = visitor_ticket(visitor)
    if ticket is None:
        return
    events.send_now(sorted(events.ticket_groups(ticket)), {"type": "oc.event", "event": {"type": TYPING_EVENT, "chat_ticket": ticket.pk}})


def agent_typing(*, ticket: Ticket, by: User, state: str = "typing") -> int:
    """An agent types (or has seen the conversation) on a web chat ticket: tell its visitors.
    The caller checked that `by` may see the ticket. Returns the number of visitors told."""
    frame = {"type": "typing", "from": "agent"} if state == "typing" else {"type": "seen"}
    visitors = (
        TimelineEntry.objects.filter(ticket=ticket, direction=TimelineEntry.Direction.INBOUND,
                                     channel__kind=Channel.Kind.WEBCHAT, identity__kind=Identity.Kind.VISITOR)
        .values_list("channel__key", "identity__value").distinct()
    )
    groups = [visitor_group(key, value) for key, value in visitors]
    if groups:
        events.send_now(groups, {"type": "widget.frame", "frame": frame})
    return len(groups)


def channel_is_open(channel: Channel) -> bool:
    return is_open(channel.settings or {}, timezone.now())


# --- surveys (CSAT) ------------------------------------------------------------------------------

def survey_prompt_send(*, channel: Channel, visitor_id: str, survey_id: str, question: str = "") -> bool:
    """Show a 1-5 rating inline in the visitor's widget. For the survey service (portal branch).
    Frame: {"type": "survey", "id": survey_id, "question": text, "scale": [1, 5]}.
    Returns False when the visitor is not connected (send the survey link another way)."""
    if not visitor_is_online(channel_key=channel.key, visitor_id=visitor_id):
        return False
    frame = {"type": "survey", "id": str(survey_id)[:64], "question": question or _("How did we do?"), "scale": [1, 5]}
    events.send_now([visitor_group(channel.key, visitor_id)], {"type": "widget.frame", "frame": frame})
    return True


#: SURVEY SERVICE HOOK: the survey service appends a callable(channel=, identity=, survey_id=,
#: rating=) here (e.g. in its AppConfig.ready()); each answer from a widget is passed to every one.
survey_answer_handlers: list = []


def survey_answer_receive(*, visitor: Visitor, survey_id: object, rating: object) -> None:
    """SURVEY SERVICE HOOK: a visitor answered a survey frame over the socket with a 1-5 rating.
    Validated here; recording it is the survey service's job (survey_answer_handlers)."""
    if not isinstance(survey_id, str) or not CLIENT_ID.match(survey_id):
        raise WebchatError("bad_request", _("Unknown survey."))
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise WebchatError("bad_request", _("Choose a rating from 1 to 5."))
    identity = visitor_identity(visitor)
    channel = Channel.objects.filter(key=visitor.channel_key).first()
    for handler in list(survey_answer_handlers):
        handler(channel=channel, identity=identity, survey_id=survey_id, rating=rating)
    if not survey_answer_handlers:
        logger.info("survey %s answered with %s but no survey service is installed", survey_id, rating)
