"""The `api` channel: integrators post messages with a bearer secret and may receive replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from channels_inbound.base import (
    Adapter,
    InboundAttachment,
    NormalizedMessage,
    PermanentSendError,
    Rejected,
    SendResult,
    TransientSendError,
    UnknownOutcome,
)
from channels_inbound.registry import register
from customers import identities
from customers.models import Identity

if TYPE_CHECKING:
    from channels_inbound.models import Channel, InboundEvent
    from tickets.models import TimelineEntry

SIGNATURE_HEADER = "X-Omnicenter-Signature"


class ApiSettings(serializers.Serializer):
    outbound_url = serializers.URLField(
        required=False, allow_blank=True,
        help_text=_("Replies are POSTed here as JSON, signed with the channel secret. Empty: read them through the API."),
    )


class SenderSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    email = serializers.CharField(required=False, allow_blank=True, max_length=320)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    id = serializers.CharField(required=False, allow_blank=True, max_length=255)

    def validate_email(self, value: str) -> str:
        return _normalized(identities.Kind.EMAIL, value)

    def validate_phone(self, value: str) -> str:
        return _normalized(identities.Kind.PHONE, value)

    def validate(self, attrs: dict) -> dict:
        if not any(attrs.get(k) for k in ("email", "phone", "id")):
            raise serializers.ValidationError(_("Give at least one of email, phone or id."))
        return attrs


def _normalized(kind: str, value: str) -> str:
    if not value:
        return ""
    try:
        return identities.normalize(kind, value)
    except identities.InvalidIdentity as exc:
        raise serializers.ValidationError(exc.message) from exc


class AttachmentSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    content_type = serializers.CharField(max_length=100, required=False, allow_blank=True)
    data_base64 = serializers.CharField()

    def validate_data_base64(self, value: str) -> str:
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise serializers.ValidationError(_("Not valid base64.")) from exc
        if len(data) > settings.ATTACHMENT_MAX_BYTES:
            raise serializers.ValidationError(
                _("Attachment larger than %(limit)s bytes.") % {"limit": settings.ATTACHMENT_MAX_BYTES}
            )
        return value


class InboundPayloadSerializer(serializers.Serializer):
    """The documented inbound payload of an `api` channel (README, DESIGN.md)."""

    id = serializers.CharField(max_length=255)
    # "from" is a Python keyword: declare the field through the class namespace.
    locals()["from"] = SenderSerializer()
    text = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    html = serializers.CharField(required=False, allow_blank=True, max_length=500_000)
    subject = serializers.CharField(required=False, allow_blank=True, max_length=300)
    thread = serializers.CharField(required=False, allow_blank=True, max_length=255)
    attachments = AttachmentSerializer(many=True, required=False, max_length=20)

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("text") or attrs.get("html")):
            raise serializers.ValidationError({"text": [_("Give text or html.")]})
        return attrs


_TEXT_LIMITS = {"id": 255, "text": 100_000, "html": 500_000, "subject": 300, "thread": 255}
_SENDER_LIMITS = {"name": 200, "email": 320, "phone": 40, "id": 255}
_NORMALIZED = {"email": identities.Kind.EMAIL, "phone": identities.Kind.PHONE}


def _plain(value, limit: int) -> str | None:
    """A CharField's value as DRF would clean it, or None where DRF would have more to say."""
    if type(value) is not str:
        return None
    value = value.strip()
    if len(value) > limit or "\x00" in value or (not value.isprintable() and any(0xD800 <= ord(c) <= 0xDFFF for c in value)):
        return None
    return value


def inbound_payload_validate(payload) -> tuple[dict | None, dict | None]:
    """Validate an inbound payload: (clean data, None) or (None, field errors).

    Every webhook pays this, and building `InboundPayloadSerializer` (DRF deep-copies a dozen field
    objects per instance) cost about as much CPU as the rest of the request. The common shape is
    checked here by hand, to exactly what the serializer returns (tests/channels_inbound/api);
    anything else, attachments and every error included, goes through the serializer.
    """
    clean = _fast_clean(payload)
    if clean is not None:
        return clean, None
    serializer = InboundPayloadSerializer(data=payload)
    if serializer.is_valid():
        return serializer.validated_data, None
    return None, serializer.errors


def _fast_clean(payload) -> dict | None:
    if type(payload) is not dict or "attachments" in payload:
        return None
    sender = payload.get("from")
    if type(sender) is not dict:
        return None
    clean: dict = {}
    for name, limit in _TEXT_LIMITS.items():
        if name in payload:
            value = _plain(payload[name], limit)
            if value is None:
                return None
            clean[name] = value
    if not clean.get("id") or not (clean.get("text") or clean.get("html")):
        return None
    who: dict = {}
    for name, limit in _SENDER_LIMITS.items():
        if name in sender:
            value = _plain(sender[name], limit)
            if value is None:
                return None
            if value and name in _NORMALIZED:
                try:
                    value = identities.normalize(_NORMALIZED[name], value)
                except identities.InvalidIdentity:
                    return None
            who[name] = value
    if not any(who.get(k) for k in ("email", "phone", "id")):
        return None
    clean["from"] = who
    return clean


def _stated_reason(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    reason = body.get("error") or body.get("detail") if isinstance(body, dict) else None
    return f": {reason[:200]}" if isinstance(reason, str) and reason else ""


@register
class ApiAdapter(Adapter):
    kinds = ("api",)
    settings_serializer = ApiSettings
    generated_secrets = ("secret",)
    identity_kinds = ("external", "email", "phone")

    def verify(self, request, channel: Channel) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _sep, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Rejected("missing bearer secret", status=401)
        expected = channel.secret("secret")
        if not expected or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise Rejected("wrong secret", status=403)

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        payload = event.payload
        sender = payload.get("from") or {}
        name = sender.get("name", "")
        claims = []
        if sender.get("id"):
            claims.append(identities.claim(Identity.Kind.EXTERNAL, sender["id"], namespace=event.channel.key, display_name=name))
        if sender.get("email"):
            claims.append(identities.claim(Identity.Kind.EMAIL, sender["email"], display_name=name))
        if sender.get("phone"):
            claims.append(identities.claim(Identity.Kind.PHONE, sender["phone"], display_name=name))
        attachments = [
            InboundAttachment(
                filename=a.get("filename", ""), content_type=a.get("content_type", ""),
                data=base64.b64decode(a.get("data_base64", "")),
            )
            for a in payload.get("attachments") or []
        ]
        return [
            NormalizedMessage(
                provider_message_id=event.external_id,
                sender=claims,
                display_name=name,
                text=payload.get("text", ""),
                html=payload.get("html", ""),
                subject=payload.get("subject", ""),
                attachments=attachments,
                thread_keys=[payload["thread"]] if payload.get("thread") else [],
            )
        ]

    def send(self, entry: TimelineEntry) -> SendResult:
        channel = entry.channel
        url = (channel.settings or {}).get("outbound_url")
        if not url:
            return SendResult(detail="no outbound_url: the reply is available through the API")
        body = json.dumps({
            "id": str(entry.public_id),
            "ticket": entry.ticket_id,
            "to": {"kind": entry.identity.kind, "value": entry.identity.value} if entry.identity else None,
            "text": entry.text,
            "html": entry.html,
        }).encode()
        signature = hmac.new(channel.secret("secret").encode(), body, hashlib.sha256).hexdigest()
        try:
            response = requests.post(
                url, data=body, timeout=(5, settings.OUTBOUND_HTTP_TIMEOUT), allow_redirects=False,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: f"sha256={signature}",
                    "Idempotency-Key": str(entry.public_id),
                },
            )
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout) or not isinstance(exc, requests.Timeout):
                raise TransientSendError(f"cannot connect: {exc.__class__.__name__}") from exc
            raise UnknownOutcome("timed out waiting for the answer") from exc
        except requests.Timeout as exc:
            raise UnknownOutcome("timed out waiting for the answer") from exc
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientSendError(f"HTTP {response.status_code}")
        if response.status_code >= 300:
            # Agents see the integrator's stated reason ({"error"} or {"detail"} in JSON), never an
            # arbitrary body of whatever answered at that URL.
            raise PermanentSendError(f"HTTP {response.status_code}" + _stated_reason(response))
        try:
            provider_id = str((response.json() or {}).get("id", ""))[:255]
        except (ValueError, AttributeError):
            provider_id = ""  # a 2xx without a JSON object is still accepted
        return SendResult(provider_message_id=provider_id)

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        return {"inbound": settings.PUBLIC_BASE_URL + reverse("api-channel-inbound", args=[channel.key])}
