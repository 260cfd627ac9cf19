"""Every write the portal makes: sign-in tokens, portal messages, reopening, new requests,
callbacks and deflections. Views check (tickets.portal.selectors), these act."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.identities import InvalidIdentity, normalize_email, normalize_phone
from customers.models import Customer, Identity
from omnicenter import crypto, events
from omnicenter.errors import Conflict, DomainError
from tickets.models import CallbackRequest, Deflection, PortalLoginToken, Ticket, TimelineEntry
from tickets.services import OPEN_STATUSES, TicketClosed, _bump, _event_entry, _lock, _store_attachments

if TYPE_CHECKING:
    from channels_inbound.base import InboundAttachment

S = Ticket.Status
CODE_DIGITS = 6


class ReopenExpired(Conflict):
    code = "reopen_expired"
    default_message = gettext_lazy("This request was solved too long ago to reopen; please open a new request.")


# --- sign-in ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigninAddress:
    kind: str  # Identity.Kind.EMAIL or PHONE
    value: str  # normalized


def signin_address(raw: str) -> SigninAddress:
    """What the customer typed, as an email or an E.164 phone; InvalidIdentity if it is neither."""
    raw = (raw or "").strip()
    if "@" in raw:
        return SigninAddress(Identity.Kind.EMAIL, normalize_email(raw))
    if not raw:
        raise InvalidIdentity(_("Enter your email address or phone number."))
    return SigninAddress(Identity.Kind.PHONE, normalize_phone(raw))


def _link_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _code_hash(identity_id: int, code: str) -> str:
    return salted_hmac("omnicenter.portal.code", f"{identity_id}:{code}", algorithm="sha256").hexdigest()


@transaction.atomic
def portal_signin_request(*, address: SigninAddress) -> PortalLoginToken | None:
    """Issue a magic link (email) or a one-time code (phone) if the address is a verified identity
    of a customer; None otherwise. The caller answers the same either way. Sent after commit."""
    from tickets.portal.tasks import send_signin_message

    identity = (
        Identity.objects.select_related("customer")
        .filter(kind=address.kind, namespace="", value=address.value, verified=True,
                customer__erased_at__isnull=True)
        .first()
    )
    if identity is None:
        return None
    now = timezone.now()
    if address.kind == Identity.Kind.EMAIL:
        kind, secret = PortalLoginToken.Kind.LINK, secrets.token_urlsafe(32)
        token_hash, lifetime = _link_hash(secret), settings.PORTAL_LINK_MINUTES
    else:
        kind, secret = PortalLoginToken.Kind.CODE, f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        token_hash, lifetime = _code_hash(identity.pk, secret), settings.PORTAL_CODE_MINUTES
        # Only the newest code works: fewer live codes, fewer chances for a guess.
        PortalLoginToken.objects.filter(identity=identity, kind=kind, used_at__isnull=True).update(expires_at=now)
    token = PortalLoginToken.objects.create(
        customer=identity.customer, identity=identity, kind=kind, token_hash=token_hash,
        outbox=crypto.encrypt_json({"secret": secret}), expires_at=now + timedelta(minutes=lifetime),
    )
    transaction.on_commit(lambda: send_signin_message.delay(token.pk), robust=True)
    return token


def _live(queryset):
    return queryset.filter(used_at__isnull=True, expires_at__gt=timezone.now())


def signin_link_is_valid(secret: str) -> bool:
    return _live(PortalLoginToken.objects.filter(kind=PortalLoginToken.Kind.LINK, token_hash=_link_hash(secret))).exists()


def portal_signin_with_link(*, secret: str) -> PortalLoginToken | None:
    """Use up a magic link: one conditional UPDATE, so two clicks racing sign in once."""
    token_hash = _link_hash(secret)
    used = _live(PortalLoginToken.objects.filter(kind=PortalLoginToken.Kind.LINK, token_hash=token_hash)).update(
        used_at=timezone.now(), outbox=""
    )
    if not used:
        return None
    return PortalLoginToken.objects.select_related("identity", "customer").filter(token_hash=token_hash).first()


@transaction.atomic
def portal_signin_with_code(*, address: SigninAddress, code: str) -> PortalLoginToken | None:
    """Check a one-time code for a phone address. A wrong code counts against every live code of
    that address; after PORTAL_CODE_ATTEMPTS wrong tries a code is dead."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    candidates = list(
        _live(PortalLoginToken.objects.select_for_update().filter(
            kind=PortalLoginToken.Kind.CODE, identity__kind=address.kind, identity__value=address.value,
            identity__verified=True, attempts__lt=settings.PORTAL_CODE_ATTEMPTS,
        ))
    )
    match = next(
        (t for t in candidates if len(code) == CODE_DIGITS and hmac.compare_digest(t.token_hash, _code_hash(t.identity_id, code))),
        None,
    )
    if match is None:
        PortalLoginToken.objects.filter(pk__in=[t.pk for t in candidates]).update(attempts=F("attempts") + 1)
        return None
    match.used_at = timezone.now()
    match.outbox = ""
    match.save(update_fields=["used_at", "outbox"])
    return PortalLoginToken.objects.select_related("identity", "customer").get(pk=match.pk)


# --- tickets ------------------------------------------------------------------------------------


def can_reopen(ticket: Ticket) -> bool:
    return (
        ticket.status == S.SOLVED and ticket.solved_at is not None
        and timezone.now() - ticket.solved_at <= timedelta(days=settings.PORTAL_REOPEN_DAYS)
    )


def _portal_identity(customer: Customer, identity: Identity | None) -> Identity | None:
    # The identity the customer signed in with, if it is still theirs (an un-merge may have moved it).
    return identity if identity is not None and identity.customer_id == customer.pk else None


def _reopen(ticket: Ticket, customer: Customer, fields: list[str]) -> None:
    if not can_reopen(ticket):
        raise ReopenExpired()
    ticket.status, ticket.solved_at = S.OPEN, None
    fields += ["status", "solved_at"]
    _event_entry(ticket, by=None, action="reopened", data={"from": S.SOLVED, "to": S.OPEN, "via": "portal",
                                                           "customer": customer.pk})


@transaction.atomic
def ticket_portal_reply(
    *, ticket: Ticket, customer: Customer, identity: Identity | None, text: str,
    attachments: list[InboundAttachment] = (),
) -> TimelineEntry:
    """The customer writes on their ticket from the portal: a public inbound message with no
    channel (`data.via == "portal"`). On a solved ticket it reopens it within PORTAL_REOPEN_DAYS."""
    ticket = _lock(ticket.pk)
    if ticket.customer_id != customer.pk:
        raise DomainError(_("This request is not yours."))
    if ticket.status == S.CLOSED:
        raise TicketClosed(_("This request is closed; please open a new request."))
    if not text.strip() and not attachments:
        raise DomainError(_("Write a message or attach a file."))
    fields = ["last_message_at"]
    if ticket.status == S.SOLVED:
        _reopen(ticket, customer, fields)
    elif ticket.status == S.PENDING:
        ticket.status = S.OPEN
        fields.append("status")
    now = timezone.now()
    entry = TimelineEntry.objects.create(
        ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND,
        identity=_portal_identity(customer, identity), author_customer=customer, text=text.strip(),
        delivery_status=TimelineEntry.Delivery.RECEIVED, data={"via": "portal"},
    )
    _store_attachments(entry, attachments)
    ticket.last_message_at = now
    _bump(ticket, fields)
    events.publish_ticket_event("timeline.appended", ticket)
    return entry


@transaction.atomic
def ticket_portal_reopen(*, ticket: Ticket, customer: Customer) -> Ticket:
    ticket = _lock(ticket.pk)
    if ticket.customer_id != customer.pk:
        raise DomainError(_("This request is not yours."))
    if ticket.status in OPEN_STATUSES:
        return ticket
    if ticket.status == S.CLOSED:
        raise TicketClosed(_("This request is closed; please open a new request."))
    fields: list[str] = []
    _reopen(ticket, customer, fields)
    _bump(ticket, fields)
    events.publish_ticket_event("ticket.updated", ticket)
    return ticket


@transaction.atomic
def ticket_portal_open(
    *, customer: Customer, identity: Identity | None, subject: str, text: str,
    attachments: list[InboundAttachment] = (),
) -> Ticket:
    """A new request from the portal. Its origin channel is the one that reaches the sign-in
    identity (so agents' replies also go out there); its team is that channel's default team."""
    from tickets.portal.notify import channel_for

    subject, text = subject.strip()[:300], text.strip()
    if not text:
        raise DomainError(_("Describe what you need."))
    identity = _portal_identity(customer, identity)
    channel = channel_for(identity) if identity is not None else None
    now = timezone.now()
    ticket = Ticket.objects.create(
        subject=subject or text.splitlines()[0][:120], customer=customer, origin_channel=channel,
        team=channel.default_team if channel else None, last_message_at=now,
    )
    entry = TimelineEntry.objects.create(
        ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND,
        identity=identity, author_customer=customer, text=text,
        delivery_status=TimelineEntry.Delivery.RECEIVED, data={"via": "portal"},
    )
    _store_attachments(entry, attachments)
    events.publish_ticket_event("ticket.created", ticket)
    return ticket


MAX_CALLBACK_AHEAD = timedelta(days=60)


@transaction.atomic
def callback_request_create(*, ticket: Ticket, customer: Customer, phone: str, preferred_at: datetime, note: str = "") -> CallbackRequest:
    """Record a callback wish on the ticket (workspace: "Callbacks due") and tell its agents."""
    ticket = _lock(ticket.pk)
    if ticket.customer_id != customer.pk:
        raise DomainError(_("This request is not yours."))
    if ticket.status == S.CLOSED:
        raise TicketClosed(_("This request is closed; please open a new request."))
    phone = normalize_phone(phone)
    now = timezone.now()
    if preferred_at < now - timedelta(minutes=5) or preferred_at > now + MAX_CALLBACK_AHEAD:
        raise DomainError(_("Choose a time between now and 60 days from now."))
    callback = CallbackRequest.objects.create(ticket=ticket, phone=phone, preferred_at=preferred_at, note=note.strip()[:300])
    _event_entry(ticket, by=None, action="callback_requested",
                 data={"phone": phone, "preferred_at": preferred_at.isoformat(), "callback": callback.pk})
    _bump(ticket)
    events.publish_ticket_event("ticket.updated", ticket)
    return callback


def deflection_record(*, customer: Customer | None, article_ref: str, query: str = "", language: str = "") -> Deflection:
    """The customer found the answer in a suggested article and did not open a request."""
    article_ref = (article_ref or "").strip()[:100]
    if not article_ref:
        raise DomainError(_("Which article helped?"))
    return Deflection.objects.create(customer=customer, article_ref=article_ref, query=query.strip()[:300],
                                     language=language[:8])


@transaction.atomic
def callback_mark_done(*, callback: CallbackRequest, by) -> CallbackRequest:
    """An agent made the call: it leaves "Callbacks due". Idempotent."""
    done = CallbackRequest.objects.filter(pk=callback.pk, done_at__isnull=True).update(done_at=timezone.now(), done_by=by)
    callback.refresh_from_db()
    if done:
        ticket = _lock(callback.ticket_id)
        _event_entry(ticket, by=by, action="callback_done", data={"callback": callback.pk})
        _bump(ticket)
        events.publish_ticket_event("ticket.updated", ticket)
    return callback
