"""Twilio: the `sms`, `whatsapp` and `voice` kinds (docs/channels/twilio.md).

Signatures, REST calls, TwiML and access tokens all come from the `twilio` SDK.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from channels_inbound.base import (
    Adapter,
    NormalizedMessage,
    PermanentSendError,
    Rejected,
    SendResult,
    TransientSendError,
    UnknownOutcome,
)
from channels_inbound.registry import register
from channels_inbound.twilio import client as twilio_client
from channels_inbound.twilio import tasks  # noqa: F401 (registers the worker's tasks)
from customers import identities
from customers.models import Identity

if TYPE_CHECKING:
    from channels_inbound.models import Channel, InboundEvent
    from tickets.models import TimelineEntry

SID_PATTERNS = {"account_sid": r"^AC[0-9a-fA-F]{32}$", "messaging_service_sid": r"^MG[0-9a-fA-F]{32}$",
                "api_key_sid": r"^SK[0-9a-fA-F]{32}$", "twiml_app_sid": r"^AP[0-9a-fA-F]{32}$"}


def _phone(value: str) -> str:
    if not value:
        return ""
    try:
        return identities.normalize_phone(value)
    except identities.InvalidIdentity as exc:
        raise serializers.ValidationError(exc.message) from exc


class TwilioMessagingSettings(serializers.Serializer):
    account_sid = serializers.RegexField(SID_PATTERNS["account_sid"], help_text=gettext_lazy("Twilio Account SID (AC…)."))
    auth_token = serializers.CharField(max_length=100, write_only=True, required=False,
                                       help_text=gettext_lazy("Twilio Auth Token. Stored encrypted; signs Twilio's webhooks."))
    phone_number = serializers.CharField(required=False, allow_blank=True, max_length=40,
                                         help_text=gettext_lazy("The sending number in E.164 (+48…), the WhatsApp sender for WhatsApp."))
    messaging_service_sid = serializers.RegexField(
        SID_PATTERNS["messaging_service_sid"], required=False, allow_blank=True,
        help_text=gettext_lazy("Send through this Messaging Service (MG…) instead of one number."),
    )

    def validate_phone_number(self, value: str) -> str:
        return _phone(value)

    def validate(self, attrs: dict) -> dict:
        if not self.partial:
            if not attrs.get("auth_token"):
                raise serializers.ValidationError({"auth_token": [_("This field is required.")]})
            if not (attrs.get("phone_number") or attrs.get("messaging_service_sid")):
                raise serializers.ValidationError(
                    {"phone_number": [_("Give the sending number or a Messaging Service SID.")]}
                )
        return attrs


class MenuOptionSerializer(serializers.Serializer):
    digit = serializers.RegexField(r"^[0-9]$")
    team = serializers.IntegerField(min_value=1)
    label = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_team(self, value: int) -> int:
        from tickets.models import Team

        if not Team.objects.filter(pk=value).exists():
            raise serializers.ValidationError(_("No such team."))
        return value


class HoursSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), min_length=1,
                                 help_text=gettext_lazy("0 is Monday."))
    # Kept as "HH:MM" strings: the settings are JSON, and such strings compare in time order.
    start = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text=gettext_lazy("HH:MM, local time."))
    end = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", help_text=gettext_lazy("HH:MM, local time."))

    def validate(self, attrs: dict) -> dict:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError(_("The end must be after the start."))
        return attrs


class LocalizedText(serializers.DictField):
    """{"en": "...", "pl": "..."}: a text per language, the channel's default language as fallback."""

    child = serializers.CharField(max_length=1000)


class TwilioVoiceSettings(TwilioMessagingSettings):
    api_key_sid = serializers.RegexField(SID_PATTERNS["api_key_sid"], required=False, allow_blank=True,
                                         help_text=gettext_lazy("API key (SK…) that signs the agents' browser access tokens."))
    api_key_secret = serializers.CharField(max_length=100, write_only=True, required=False, allow_blank=True,
                                           help_text=gettext_lazy("Its secret. Stored encrypted."))
    twiml_app_sid = serializers.RegexField(SID_PATTERNS["twiml_app_sid"], required=False, allow_blank=True,
                                           help_text=gettext_lazy("TwiML App (AP…) whose Voice URL is this channel's client URL."))
    default_language = serializers.CharField(max_length=8, required=False, default="en")
    greeting = LocalizedText(required=False, default=dict)
    closed_message = LocalizedText(required=False, default=dict)
    menu_prompt = LocalizedText(required=False, default=dict)
    menu = MenuOptionSerializer(many=True, required=False, default=list, max_length=10)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    business_hours = HoursSerializer(many=True, required=False, default=list,
                                     help_text=gettext_lazy("Empty: always open."))
    ring_timeout = serializers.IntegerField(min_value=5, max_value=60, required=False, default=20)
    queue_max_wait = serializers.IntegerField(min_value=0, max_value=3600, required=False, default=180)
    voicemail_max_length = serializers.IntegerField(min_value=5, max_value=600, required=False, default=120)
    transcribe = serializers.BooleanField(required=False, default=True)

    def validate_timezone(self, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise serializers.ValidationError(_("Unknown time zone.")) from exc
        return value

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        digits = [o["digit"] for o in attrs.get("menu") or []]
        if len(digits) != len(set(digits)):
            raise serializers.ValidationError({"menu": [_("Each digit may be used once.")]})
        return attrs


def signed_url(request) -> str:
    """The URL Twilio called: PUBLIC_BASE_URL (what Twilio was given) plus the path and query string
    as received, since the proxy in front changes scheme, host and port."""
    return settings.PUBLIC_BASE_URL + request.get_full_path()


def verify_signature(request, channel: Channel) -> None:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise Rejected("missing X-Twilio-Signature", status=403)
    token = channel.secret("auth_token")
    if not token:
        raise Rejected("channel has no auth token", status=403)
    validator = RequestValidator(token)
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER, ""))
    url = signed_url(request)
    # JSON callbacks sign the URL (with bodySHA256, the body's hash); form posts sign every POST
    # parameter, unfiltered, repeated values included.
    params = request.body.decode("utf-8", "replace") if "bodySHA256" in request.GET else request.POST
    if not validator.validate(url, params, signature, algorithm=algorithm):
        raise Rejected("wrong X-Twilio-Signature", status=403)


def address(kind: str, phone: str) -> str:
    return f"whatsapp:{phone}" if kind == "whatsapp" else phone


class _TwilioBase(Adapter):
    secret_fields = ("auth_token",)
    identity_kinds = (Identity.Kind.PHONE,)

    def verify(self, request, channel: Channel) -> None:
        verify_signature(request, channel)

    def client(self, channel: Channel):
        return twilio_client.rest_client(account_sid=channel.settings["account_sid"], auth_token=channel.secret("auth_token"))


def _map_errors(call):
    try:
        return call()
    except TwilioRestException as exc:
        if exc.status in (408, 429) or exc.status >= 500:
            raise TransientSendError(f"Twilio HTTP {exc.status}") from exc
        raise PermanentSendError(_("Twilio refused the message (error %(code)s): %(msg)s")
                                 % {"code": exc.code or exc.status, "msg": (exc.msg or "")[:300]}) from exc
    except requests.ConnectionError as exc:
        if isinstance(exc, requests.ConnectTimeout) or not isinstance(exc, requests.Timeout):
            raise TransientSendError(f"cannot connect: {exc.__class__.__name__}") from exc
        raise UnknownOutcome("timed out waiting for Twilio's answer") from exc
    except requests.Timeout as exc:
        raise UnknownOutcome("timed out waiting for Twilio's answer") from exc


@register
class TwilioMessagingAdapter(_TwilioBase):
    kinds = ("sms", "whatsapp")
    settings_serializer = TwilioMessagingSettings
    can_send_text = True

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        from channels_inbound.twilio import messaging

        return messaging.parse(event)

    def after_ingest(self, entry: TimelineEntry) -> None:
        from channels_inbound.twilio import messaging

        messaging.after_ingest(entry)

    def _create(self, channel: Channel, to: str, **fields) -> str:
        conf = channel.settings or {}
        sender = {"messaging_service_sid": conf["messaging_service_sid"]} if conf.get("messaging_service_sid") else {
            "from_": address(channel.kind, conf["phone_number"])}
        status_callback = settings.PUBLIC_BASE_URL + reverse("twilio-status", args=[channel.key])
        message = _map_errors(lambda: self.client(channel).messages.create(
            to=address(channel.kind, to), status_callback=status_callback, **sender, **fields))
        return message.sid

    def send(self, entry: TimelineEntry) -> SendResult:
        from channels_inbound.twilio import messaging

        channel, identity = entry.channel, entry.identity
        if identity is None or identity.kind != Identity.Kind.PHONE:
            raise PermanentSendError(_("This message has no phone number to go to."))
        messaging.check_can_send(channel=channel, identity=identity, template=bool(entry.data.get("template")))
        if entry.attachments.exists():
            raise PermanentSendError(_("Attachments cannot be sent on this channel; send a link instead."))
        template = entry.data.get("template")
        if template:
            fields = {"content_sid": template["content_sid"],
                      "content_variables": json.dumps(template.get("variables") or {})}
        else:
            fields = {"body": _with_status_link(entry)}
        try:
            sid = self._create(channel, identity.value, **fields)
        except PermanentSendError as exc:
            messaging.learn_from_refusal(channel=channel, identity=identity, error=exc)
            raise
        return SendResult(provider_message_id=sid)

    def reconcile(self, entry: TimelineEntry) -> str | None:
        """A send that timed out: look for it among the recent messages to that number (same
        body, created since we tried). Found: its SID is kept, so later callbacks find it."""
        from datetime import timedelta

        from channels_inbound.twilio.messaging import STATUS_MAP
        from tickets.models import TimelineEntry as Entry

        if entry.identity is None or entry.data.get("template"):
            return None
        since = (entry.created_at - timedelta(minutes=1)).astimezone(UTC)
        try:
            # Newest first; no DateSent filter, which would hide messages still queued (not sent yet).
            found = [m for m in self.client(entry.channel).messages.list(
                to=address(entry.channel.kind, entry.identity.value), limit=50)
                if (m.body or "") == entry.text and m.date_created and m.date_created >= since]
        except (TwilioRestException, requests.RequestException):
            return None  # ask again at the next sweep
        if len(found) != 1:
            return None  # not there (never accepted) or ambiguous: the agent decides
        message = found[0]
        Entry.objects.filter(pk=entry.pk, provider_message_id="").update(provider_message_id=message.sid)
        return STATUS_MAP.get(message.status, "sent")

    def send_text(self, channel: Channel, address: str, text: str, *, subject: str = "") -> None:
        from channels_inbound.twilio import messaging

        try:
            phone = identities.normalize_phone(address)
        except identities.InvalidIdentity as exc:
            raise PermanentSendError(exc.message) from exc
        identity = Identity.objects.filter(kind=Identity.Kind.PHONE, value=phone, verified=True).first()
        if identity is not None:
            messaging.check_can_send(channel=channel, identity=identity, template=False)
        self._create(channel, phone, body=text)

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        base = settings.PUBLIC_BASE_URL
        return {"message": base + reverse("twilio-message", args=[channel.key]),
                "status": base + reverse("twilio-status", args=[channel.key])}


@register
class TwilioVoiceAdapter(_TwilioBase):
    kinds = ("voice",)
    settings_serializer = TwilioVoiceSettings
    secret_fields = ("auth_token", "api_key_secret")

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        from channels_inbound.twilio import calls

        calls.event_apply(event)
        return []

    def send(self, entry: TimelineEntry) -> SendResult:
        raise PermanentSendError(_("A voice channel cannot send text messages; call the customer instead."))

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        base = settings.PUBLIC_BASE_URL
        return {"voice": base + reverse("twilio-voice", args=[channel.key]),
                "voice_status": base + reverse("twilio-voice-hook", args=[channel.key, "status"]),
                "client": base + reverse("twilio-voice-hook", args=[channel.key, "client"])}


def _with_status_link(entry: TimelineEntry) -> str:
    """The first text message of a ticket on this channel carries the ticket's signed status link
    (the customer follows the request on the portal without signing in); later ones do not, so a
    conversation does not pay for the link in every message's segments."""
    from django.utils import translation

    from tickets.models import TimelineEntry
    from tickets.portal.links import status_url

    earlier = TimelineEntry.objects.filter(
        ticket_id=entry.ticket_id, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.OUTBOUND,
        channel__kind=entry.channel.kind, pk__lt=entry.pk,
    ).exists()
    if earlier:
        return entry.text
    with translation.override(entry.ticket.customer.language or None):
        label = _("Follow your request #%(number)s: %(url)s") % {"number": entry.ticket.number,
                                                                  "url": status_url(entry.ticket)}
    return f"{entry.text}\n\n{label}"
