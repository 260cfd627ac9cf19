"""Notifications outside a ticket timeline (sign-in links and codes, survey questions) through a
channel adapter's `send_text` (channels_inbound.base), chosen for the identity they go to."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from channels_inbound import registry
from channels_inbound.base import PermanentSendError, TransientSendError
from channels_inbound.models import Channel
from customers.models import Identity
from tickets.models import TimelineEntry

# Identity kind -> channel kinds that can reach it, in order of preference.
REACHED_BY = {
    Identity.Kind.EMAIL: ("email",),
    Identity.Kind.PHONE: ("sms", "whatsapp"),
    Identity.Kind.MESSENGER: ("messenger",),
    Identity.Kind.INSTAGRAM: ("instagram",),
    Identity.Kind.TELEGRAM: ("telegram",),
}


def _can_send(channel: Channel | None) -> bool:
    if channel is None or not channel.is_active:
        return False
    adapter = registry.adapter_for(channel.kind)
    return bool(adapter and adapter.can_send_text and adapter.can_send_text_on(channel))


def channel_for(identity: Identity, prefer: Channel | None = None) -> Channel | None:
    """The channel a notification to `identity` goes out on: `prefer` if it can reach it, else the
    channel this identity last wrote on, else any active channel of a fitting kind."""
    kinds = REACHED_BY.get(identity.kind, ())
    if prefer is not None and prefer.kind in kinds and _can_send(prefer):
        return prefer
    last = (
        TimelineEntry.objects.filter(identity=identity, direction=TimelineEntry.Direction.INBOUND,
                                     channel__kind__in=kinds, channel__is_active=True)
        .select_related("channel").order_by("-created_at", "-pk").first()
    )
    if last is not None and _can_send(last.channel):
        return last.channel
    for kind in kinds:
        for channel in Channel.objects.filter(kind=kind, is_active=True).order_by("pk"):
            if _can_send(channel):
                return channel
    return None


def send_to_identity(identity: Identity, text: str, *, subject: str = "", prefer: Channel | None = None) -> Channel | None:
    """Send `text`; returns the channel used (None: Django's default mailer). Raises
    TransientSendError or PermanentSendError."""
    channel = channel_for(identity, prefer)
    if channel is not None:
        registry.adapter_for(channel.kind).send_text(channel, identity.value, text, subject=subject)
        return channel
    if identity.kind == Identity.Kind.EMAIL:
        _send_default_mail(identity.value, text, subject)
        return None
    raise PermanentSendError(f"no active channel can send notifications to a {identity.kind} identity")


def _send_default_mail(address: str, text: str, subject: str) -> None:
    """A customer with no email channel configured: Django's default mailer (settings MAILERS)."""
    mail = EmailMultiAlternatives(subject=subject or "Omnicenter", body=text, from_email=settings.DEFAULT_FROM_EMAIL,
                                  to=[address], headers={"Auto-Submitted": "auto-generated"})
    try:
        mail.send()
    except OSError as exc:  # smtplib's errors are OSErrors
        raise TransientSendError(f"default mailer: {exc}") from exc
