"""What every channel adapter provides, and the normalized shapes that cross the spine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from omnicenter.errors import DomainError

if TYPE_CHECKING:
    from django.http import HttpRequest

    from channels_inbound.models import Channel, InboundEvent
    from customers.identities import IdentityClaim
    from customers.models import Identity
    from tickets.models import TimelineEntry


@dataclass
class InboundAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class NormalizedMessage:
    """One message as the spine sees it, whichever provider it came from (DESIGN.md step 5)."""

    provider_message_id: str
    sender: list[IdentityClaim]
    display_name: str = ""
    text: str = ""
    html: str = ""
    subject: str = ""
    attachments: list[InboundAttachment] = field(default_factory=list)
    thread_keys: list[str] = field(default_factory=list)
    #: provider details kept on the timeline entry's `data` (e.g. an ESP's own message id, which
    #: its delivery and bounce webhooks quote)
    data: dict = field(default_factory=dict)
    timestamp: datetime | None = None
    is_auto_reply: bool = False
    language: str = ""
    #: kept on the timeline entry's `data` (e.g. an email's inline images: content-id -> filename)
    data: dict = field(default_factory=dict)


@dataclass
class SendResult:
    provider_message_id: str = ""
    detail: str = ""
    #: conversation hints the customer's answer will carry (an email's Message-ID), recorded on
    #: the ticket so that the answer threads back to it
    thread_keys: list[str] = field(default_factory=list)
    #: provider details kept on the timeline entry's `data` (e.g. an ESP's own message id, which
    #: its delivery and bounce webhooks quote)
    data: dict = field(default_factory=dict)


class Rejected(Exception):
    """Verification failed: the request is answered with `status` and nothing is stored."""

    def __init__(self, reason: str, status: int = 403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Unprocessable(Exception):
    """The payload can never be processed (an email that cannot be parsed): no retries, the event
    is kept raw and shown to admins at once."""


class TransientSendError(Exception):
    """The provider could not take the message now (5xx, 429, connection refused): retry later."""


class PermanentSendError(Exception):
    """The provider refused the message for good; the reason is shown on the timeline."""


class UnknownOutcome(Exception):
    """The request may or may not have reached the provider (timeout): never blindly re-send."""


class ChannelWindowExpired(DomainError):
    """The provider accepts no message to this person now (Meta's 24-hour window): refused before
    the reply is queued (`Adapter.check_reply`)."""

    status_code = 409
    code = "window_expired"
    default_message = gettext_lazy("The customer's messaging window on this channel is closed.")


class EmptySettings(serializers.Serializer):
    pass


class Adapter:
    """Base class. Subclasses live in `channels_inbound/<provider>/adapter.py` and register themselves."""

    kinds: ClassVar[tuple[str, ...]] = ()
    #: validates the admin-supplied settings of a channel of this kind
    settings_serializer: ClassVar[type[serializers.Serializer]] = EmptySettings
    #: settings keys that are secrets: stored encrypted, never returned by the API
    secret_fields: ClassVar[tuple[str, ...]] = ()
    #: secrets the server generates at creation and shows once
    generated_secrets: ClassVar[tuple[str, ...]] = ()
    #: identity kinds a reply on this channel can be addressed to (empty: any)
    identity_kinds: ClassVar[tuple[str, ...]] = ()

    def verify(self, request: HttpRequest, channel: Channel) -> None:
        raise NotImplementedError

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        raise NotImplementedError

    def send(self, entry: TimelineEntry) -> SendResult:
        raise NotImplementedError

    def after_ingest(self, entry: TimelineEntry) -> None:
        """Called in the processing transaction after an inbound message is on the timeline (also
        when a repeated delivery found it there already): channel-specific follow-ups."""
        return None

    def reconcile(self, entry: TimelineEntry) -> str | None:
        """Ask the provider what became of a send whose outcome is unknown; None if it cannot say."""
        return None

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        return {}

    def check_reply(self, channel: Channel, identity: Identity | None) -> None:
        """Called by `ticket_reply` before a person's reply is queued: raise ChannelWindowExpired
        (or another DomainError) with a readable message when the provider would refuse it anyway.
        Reads only; never calls the provider (it runs under the ticket's lock)."""
        return None

    def channel_created(self, channel: Channel) -> None:
        """Runs after the creating transaction commits (e.g. enqueue the provider's webhook
        registration). Must not call the provider itself: it runs in the admin's request."""
        return None

    def test_connection(self, channel: Channel) -> tuple[bool, str] | None:
        """The kind's "test connection": (ok, readable message that never echoes secrets), or None
        when there is nothing to test."""
        return None

    #: whether send_text works for this kind (portal sign-in codes, survey and status links)
    can_send_text: ClassVar[bool] = False

    def can_send_text_on(self, channel: Channel) -> bool:
        """Whether this channel, as configured, can send notifications (an email channel without
        an SMTP server or an ESP cannot)."""
        return self.can_send_text

    def send_text(self, channel: Channel, address: str, text: str, *, subject: str = "") -> None:
        """Send a notification outside any ticket timeline (a sign-in code, a survey or status link)
        to one address of this channel's identity kind. Raises TransientSendError or
        PermanentSendError with a message fit for the log; returns once the provider accepted it."""
        raise NotImplementedError(f"{type(self).__name__} cannot send notifications")
