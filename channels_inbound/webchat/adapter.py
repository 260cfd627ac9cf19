"""The `webchat` channel: the widget a site embeds with one script tag (docs/channels/webchat.md).

Visitors talk over `/ws/widget/<key>/` (consumers.py). Their messages are stored as InboundEvents
and processed at once, in the socket's own request, by the same spine as every channel (DESIGN.md
step 4). Agent replies are pushed to the visitor's sockets over the channel layer by `send`.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from channels_inbound.base import Adapter, InboundAttachment, NormalizedMessage, SendResult
from channels_inbound.registry import register
from customers import identities
from customers.models import Identity

if TYPE_CHECKING:
    from channels_inbound.models import Channel, InboundEvent
    from tickets.models import TimelineEntry

logger = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$")
PRECHAT_MODES = ("off", "optional", "required")


def normalize_origin(value: str) -> str:
    """`https://shop.example.com` (scheme, host and a non-default port; no path): how browsers
    send the Origin header, so that the allow-list is compared exactly."""
    parts = urlsplit((value or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(value)
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


class BusinessHoursSerializer(serializers.Serializer):
    timezone = serializers.CharField(max_length=64, default="UTC")
    #: {"mon": ["09:00-17:00"], ...}; a missing day is closed
    days = serializers.DictField(child=serializers.ListField(child=serializers.CharField(max_length=11), max_length=6))

    def validate_timezone(self, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise serializers.ValidationError(_("Unknown time zone.")) from exc
        return value

    def validate_days(self, value: dict) -> dict:
        for day, ranges in value.items():
            if day not in DAYS:
                raise serializers.ValidationError(_("Days are mon, tue, wed, thu, fri, sat and sun."))
            for item in ranges:
                if not _RANGE.match(item) or item[:5] >= item[6:]:
                    raise serializers.ValidationError(_("Write hours as 09:00-17:00."))
        return value


class PrechatSerializer(serializers.Serializer):
    name = serializers.ChoiceField(PRECHAT_MODES, default="off")
    email = serializers.ChoiceField(PRECHAT_MODES, default="off")
    phone = serializers.ChoiceField(PRECHAT_MODES, default="off")


class WebchatSettings(serializers.Serializer):
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=50,
        help_text=_("Sites allowed to embed the widget, e.g. https://shop.example.com"),
    )
    greeting = serializers.CharField(max_length=500, required=False, allow_blank=True,
                                     help_text=_("Welcome shown to a first-time visitor."))
    greeting_returning = serializers.CharField(
        max_length=500, required=False, allow_blank=True,
        help_text=_("Welcome shown to a returning verified visitor; {name} is replaced by their name."),
    )
    offline_message = serializers.CharField(max_length=500, required=False, allow_blank=True,
                                            help_text=_("Shown outside business hours."))
    business_hours = BusinessHoursSerializer(required=False, allow_null=True,
                                             help_text=_("Empty: always open."))
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False, default="#2563eb")
    position = serializers.ChoiceField(("right", "left"), required=False, default="right")
    team_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    team_photo_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    language = serializers.ChoiceField([code for code, _name in settings.LANGUAGES], required=False, default="en")
    prechat = PrechatSerializer(required=False, help_text=_("Pre-chat form fields: off, optional or required. All off: no form."))
    email_offline_replies = serializers.BooleanField(
        required=False, default=True,
        help_text=_("Email agents' replies to visitors who have left the chat and gave an email address."),
    )
    email_channel = serializers.CharField(
        max_length=40, required=False, allow_blank=True,
        help_text=_("Key of the email channel that sends transcripts, codes and replies by email. "
                    "Empty: the first email channel that can send."),
    )

    def validate_email_channel(self, value: str) -> str:
        from channels_inbound.models import Channel

        value = value.strip()
        if value and not Channel.objects.filter(key=value, kind=Channel.Kind.EMAIL).exists():
            raise serializers.ValidationError(_("There is no email channel with this key."))
        return value

    def validate_allowed_origins(self, value: list[str]) -> list[str]:
        clean = []
        for item in value:
            try:
                clean.append(normalize_origin(item))
            except ValueError as exc:
                raise serializers.ValidationError(
                    _("“%(value)s” is not an origin such as https://shop.example.com.") % {"value": item}
                ) from exc
        return list(dict.fromkeys(clean))


def is_open(channel_settings: dict, now: datetime) -> bool:
    """Whether the channel is within business hours at `now` (no hours configured: always open)."""
    hours = (channel_settings or {}).get("business_hours")
    if not hours:
        return True
    local = now.astimezone(ZoneInfo(hours.get("timezone") or "UTC"))
    ranges = (hours.get("days") or {}).get(DAYS[local.weekday()], [])
    clock = local.strftime("%H:%M")
    return any(item[:5] <= clock < item[6:] for item in ranges)


def visitor_claim(channel: Channel, visitor_id: str, *, display_name: str = "") -> identities.IdentityClaim:
    """A visitor's identity: `anon:<random>` for a token we issued, `user:<site user id>` for one
    the site vouched for with its identity hash. Namespaced per channel: the same user id on two
    sites is two people. Verified in both cases: only the holder of our signed token can use it."""
    return identities.claim(Identity.Kind.VISITOR, visitor_id, namespace=channel.key, display_name=display_name)


@register
class WebchatAdapter(Adapter):
    kinds = ("webchat",)
    settings_serializer = WebchatSettings
    generated_secrets = ("identity_secret",)
    identity_kinds = ("visitor",)
    can_send_text = True

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        payload = event.payload
        profile = payload.get("profile") or {}
        name = profile.get("name", "")
        claims = [visitor_claim(event.channel, payload["visitor"], display_name=name)]
        # Typed into a form: a claim, never proof. It stays on the visitor's own customer.
        if profile.get("email"):
            claims.append(identities.claim(Identity.Kind.EMAIL, profile["email"], verified=False, display_name=name))
        if profile.get("phone"):
            claims.append(identities.claim(Identity.Kind.PHONE, profile["phone"], verified=False, display_name=name))
        attachments = [
            InboundAttachment(filename=a["name"], content_type=a.get("type", ""), data=base64.b64decode(a["data"]))
            for a in payload.get("attachments") or []
        ]
        thread = payload.get("thread")
        return [
            NormalizedMessage(
                provider_message_id=event.external_id, sender=claims, display_name=name,
                text=payload.get("text", ""), attachments=attachments,
                thread_keys=[thread] if thread else [], language=payload.get("language", ""),
                data={"webchat": {"client_id": payload.get("client_id", "")}},
            )
        ]

    def send(self, entry: TimelineEntry) -> SendResult:
        from channels_inbound.webchat import mailing, services

        services.visitor_push_message(entry=entry)
        try:
            mailing.offline_reply_schedule(entry=entry)
        except Exception:
            # The reply reached the conversation; a failed email plan must not make it "unknown".
            logger.warning("could not plan the offline email for %s", entry.pk, exc_info=True)
        # Handed to the visitor's sockets (or kept for their return): delivered and read come
        # from the widget itself.
        return SendResult(provider_message_id=f"webchat:{entry.public_id}")

    def send_text(self, channel: Channel, address: str, text: str, *, subject: str = "") -> None:
        """Push a notice (a survey or status link) to a visitor who is online; `address` is the
        visitor identity's value. Nothing is stored: an offline visitor does not get it."""
        from channels_inbound.base import TransientSendError
        from channels_inbound.webchat import services

        if not services.visitor_push_notice(channel=channel, visitor_id=address, text=text):
            raise TransientSendError("the visitor is not connected")

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        base = settings.PUBLIC_BASE_URL
        ws_base = (settings.WEBSOCKET_URL or base).replace("https://", "wss://").replace("http://", "ws://")
        return {
            "script": base + reverse("webchat-script", args=[channel.key]),
            "session": base + reverse("webchat-session", args=[channel.key]),
            "websocket": ws_base.rstrip("/") + f"/ws/widget/{channel.key}/",
        }


# The ticket sidebar's chat panel; registry.autodiscover() imports this module from
# ChannelsInboundConfig.ready().
from channels_inbound.webchat import panels  # noqa: E402

panels.register()
