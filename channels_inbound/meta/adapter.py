"""Facebook Messenger and Instagram through Meta's Graph API (webhooks in, Send API out).

One Meta app can serve several pages and Instagram accounts: a webhook URL's key selects the app
(the key channel's `app_secret` checks the signature), and each entry's page or Instagram account
id routes to the channel of that page among the channels of the same app (`route_channels`).
Every messaging event is stored as its own InboundEvent on its channel, unique on the message id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from channels_inbound import social
from channels_inbound.base import (
    Adapter,
    ChannelWindowExpired,
    NormalizedMessage,
    PermanentSendError,
    Rejected,
    SendResult,
    UnknownOutcome,
)
from channels_inbound.meta import graph, tasks
from channels_inbound.models import Channel
from channels_inbound.registry import register
from customers import identities
from customers.models import Identity
from tickets.models import TimelineEntry

if TYPE_CHECKING:
    from channels_inbound.models import InboundEvent

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
TEXT_LIMIT = 2000  # characters per Send API text message
# Object of the webhook -> (channel kind, setting naming the entry id)
OBJECTS = {"page": ("messenger", "page_id"), "instagram": ("instagram", "instagram_account_id")}
# `changes` fields that carry messaging events (Instagram sends these with the messaging shape).
MESSAGING_FIELDS = {"messages", "messaging_postbacks", "message_edit", "messaging_seen", "message_reactions"}
_NUMERIC = re.compile(r"^\d{1,40}$")


def _numeric_id(value: str) -> str:
    if not _NUMERIC.match(value or ""):
        raise serializers.ValidationError(_("A numeric id, as Meta shows it."))
    return value


class MessengerSettings(serializers.Serializer):
    page_id = serializers.CharField(max_length=40, validators=[_numeric_id], help_text=_("The Facebook page's id."))
    page_access_token = serializers.CharField(
        max_length=1000, help_text=_("A page access token with pages_messaging (secret, stored encrypted).")
    )
    app_secret = serializers.CharField(
        max_length=200, help_text=_("The Meta app's secret; it checks X-Hub-Signature-256 (secret, stored encrypted).")
    )
    verify_token = serializers.CharField(
        max_length=200, help_text=_("Any string; enter the same in the app's webhook settings.")
    )
    human_agent_tag = serializers.BooleanField(
        required=False, default=False,
        help_text=_("The page has the Human Agent permission: agents may answer up to 7 days after the customer's last message."),
    )


class InstagramSettings(MessengerSettings):
    page_id = serializers.CharField(
        max_length=40, required=False, allow_blank=True, validators=[_numeric_id],
        help_text=_("The Facebook page the Instagram account is linked to (optional)."),
    )
    instagram_account_id = serializers.CharField(
        max_length=40, validators=[_numeric_id], help_text=_("The Instagram professional account's id.")
    )


def signature_for(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def route_channels(*, key_channel: Channel, object_type: str, entry_ids: set[str]) -> dict[str, Channel]:
    """The channels that entries of one webhook POST belong to, by entry id: channels of the same
    kind whose page (or Instagram account) id is the entry's and whose app secret is the key
    channel's. A signature made with one app's secret never reaches another app's pages."""
    kind, field = OBJECTS.get(object_type, (None, None))
    if kind is None or not entry_ids:
        return {}
    secret = key_channel.secret("app_secret").encode()
    routed: dict[str, Channel] = {}
    candidates = Channel.objects.filter(kind=kind, is_active=True, **{f"settings__{field}__in": sorted(entry_ids)})
    for channel in candidates.order_by("pk"):
        own = channel.settings.get(field)
        if own in routed:
            continue
        if channel.pk == key_channel.pk or hmac.compare_digest(channel.secret("app_secret").encode(), secret):
            routed[own] = channel
    return routed


def event_id(item: dict) -> str | None:
    """The id one messaging event is stored under (idempotency), or None for events we ignore."""
    sender = str((item.get("sender") or {}).get("id", ""))
    message = item.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None  # our own sends (and the page's) coming back
        mid = message.get("mid")
        if not mid:
            return None
        return f"deleted:{mid}" if message.get("is_deleted") else str(mid)
    if isinstance(item.get("message_edit"), dict):
        edit = item["message_edit"]
        return f"edit:{edit.get('mid')}:{edit.get('num_edit', 0)}" if edit.get("mid") else None
    if isinstance(item.get("postback"), dict):
        postback = item["postback"]
        return f"postback:{postback.get('mid') or sender + ':' + str(item.get('timestamp', ''))}"
    if isinstance(item.get("read"), dict):
        read = item["read"]
        return f"read:{sender}:{read.get('watermark') or read.get('mid')}"
    if isinstance(item.get("delivery"), dict):
        delivery = item["delivery"]
        return f"delivery:{sender}:{delivery.get('watermark') or ','.join(delivery.get('mids') or [])}"
    return None


def _when(ms) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(ms) / (1000 if int(ms) > 10**11 else 1), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _attachment_parts(attachments: list) -> tuple[list[dict], list[str]]:
    """Files to download later, and text lines for what is not a file (links, locations)."""
    pending, lines = [], []
    for number, attachment in enumerate(attachments or [], start=1):
        if not isinstance(attachment, dict):
            continue
        kind = attachment.get("type", "file")
        payload = attachment.get("payload") or {}
        url = payload.get("url", "")
        if kind in ("image", "video", "audio", "file") and url:
            name = payload.get("title") or f"{kind}-{number}"
            pending.append({"url": url, "filename": name, "type": kind})
        elif kind == "location" and payload.get("coordinates"):
            c = payload["coordinates"]
            lines.append(f"📍 {c.get('lat')}, {c.get('long')}")
        elif url or attachment.get("title"):
            lines.append(" ".join(filter(None, [attachment.get("title", ""), url])))
    return pending, lines


class MetaAdapter(Adapter):
    """Shared by Messenger and Instagram; the two registered subclasses differ in settings."""

    id_setting = "page_id"
    profile_fields = "first_name,last_name"
    can_send_text = True

    def namespace(self, channel: Channel) -> str:
        return str(channel.settings.get(self.id_setting, ""))

    def verify(self, request, channel: Channel) -> None:
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not given:
            raise Rejected("missing X-Hub-Signature-256", status=403)
        secret = channel.secret("app_secret")
        if not secret or not hmac.compare_digest(given.strip().encode(), signature_for(secret, request.body).encode()):
            raise Rejected("wrong X-Hub-Signature-256", status=403)

    def verify_handshake(self, channel: Channel, mode: str, token: str) -> bool:
        expected = str(channel.settings.get("verify_token", ""))
        return mode == "subscribe" and bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    # --- inbound -------------------------------------------------------------------------------
    def _identity(self, channel: Channel, user_id: str) -> Identity | None:
        return Identity.objects.filter(
            kind=channel.kind, namespace=self.namespace(channel), value=user_id, verified=True
        ).first()

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        channel = event.channel
        item = event.payload.get("item") or {}
        sender = str((item.get("sender") or {}).get("id", ""))
        at = _when(item.get("timestamp"))
        message = item.get("message")
        if isinstance(message, dict) and message.get("is_deleted"):
            social.entry_record_deleted(channel=channel, provider_message_id=message.get("mid", ""), at=at)
            return []
        if isinstance(item.get("message_edit"), dict):
            edit = item["message_edit"]
            social.entry_record_edit(channel=channel, provider_message_id=edit.get("mid", ""), text=edit.get("text", ""), at=at)
            return []
        if isinstance(item.get("read"), dict) or isinstance(item.get("delivery"), dict):
            self._apply_receipt(channel, sender, item)
            return []
        claims = [identities.claim(channel.kind, sender, namespace=self.namespace(channel))]
        if isinstance(message, dict):
            pending, lines = _attachment_parts(message.get("attachments") or [])
            data: dict = {"pending_media": pending} if pending else {}
            if (message.get("quick_reply") or {}).get("payload"):
                data["quick_reply_payload"] = str(message["quick_reply"]["payload"])[:1000]
            if (message.get("reply_to") or {}).get("mid"):
                data["reply_to"] = str(message["reply_to"]["mid"])
            text = "\n".join(filter(None, [message.get("text", ""), *lines]))
            return [NormalizedMessage(provider_message_id=str(message["mid"]), sender=claims, text=text, data=data, timestamp=at)]
        if isinstance(item.get("postback"), dict):
            postback = item["postback"]
            return [NormalizedMessage(
                provider_message_id=event.external_id, sender=claims, timestamp=at,
                text=postback.get("title") or postback.get("payload", ""),
                data={"postback_payload": str(postback.get("payload", ""))[:1000]},
            )]
        return []

    def _apply_receipt(self, channel: Channel, sender: str, item: dict) -> None:
        recipient = self._identity(channel, sender)
        if isinstance(item.get("read"), dict):
            read = item["read"]
            social.outbound_mark(
                channel=channel, recipient=recipient, status=TimelineEntry.Delivery.READ,
                provider_message_ids=[read["mid"]] if read.get("mid") else [], until=_when(read.get("watermark")),
            )
        else:
            delivery = item["delivery"]
            social.outbound_mark(
                channel=channel, recipient=recipient, status=TimelineEntry.Delivery.DELIVERED,
                provider_message_ids=[str(m) for m in delivery.get("mids") or []], until=_when(delivery.get("watermark")),
            )

    def after_ingest(self, entry: TimelineEntry) -> None:

        if entry.identity is None:
            return
        sent_at = entry.data.get("sent_at")
        last = datetime.fromisoformat(sent_at) if sent_at else entry.created_at
        social.window_extend(identity=entry.identity, channel_kind=entry.channel.kind, last_message_at=min(last, timezone.now()))
        if entry.data.get("pending_media"):
            transaction.on_commit(lambda: _enqueue(tasks.fetch_media, entry.pk), robust=True)
        if not entry.identity.display_name:
            identity_id, channel_id = entry.identity.pk, entry.channel_id
            transaction.on_commit(lambda: _enqueue(tasks.fetch_profile, identity_id, channel_id), robust=True)

    def fetch_media(self, channel: Channel, item: dict):
        from channels_inbound.provider_http import download

        return download(item.get("url", ""), what=f"{channel.kind} attachment")

    def fetch_profile(self, channel: Channel, identity: Identity) -> str:
        token = channel.secret("page_access_token")
        if not token:
            return ""
        body = graph.profile(token=token, user_id=identity.value, fields=self.profile_fields)
        return " ".join(filter(None, [body.get("first_name"), body.get("last_name")])) or body.get("name") or ""

    # --- outbound ------------------------------------------------------------------------------
    def messaging_type(self, channel: Channel, identity: Identity, *, human: bool) -> dict:
        """RESPONSE within 24 hours of the customer's last message; the HUMAN_AGENT tag up to
        7 days for a person's reply where the page has that permission; else a clear refusal."""
        last = social.window_last_message_at(identity=identity, channel_kind=channel.kind)
        now = timezone.now()
        if last is not None and now - last <= WINDOW:
            return {"messaging_type": "RESPONSE"}
        tagged = bool(channel.settings.get("human_agent_tag")) and human
        if last is not None and tagged and now - last <= HUMAN_AGENT_WINDOW:
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        if last is None:
            raise ChannelWindowExpired(gettext(
                "The customer has not written on this channel: Meta allows answers only within 24 hours of their message."
            ))
        if tagged:
            raise ChannelWindowExpired(gettext(
                "More than 7 days have passed since the customer's last message: Meta allows no further answer "
                "until they write again."
            ))
        raise ChannelWindowExpired(gettext(
            "More than 24 hours have passed since the customer's last message: Meta allows no answer until they "
            "write again (pages with the Human Agent permission may answer for 7 days; see the channel's settings)."
        ))

    def check_reply(self, channel: Channel, identity: Identity | None) -> None:
        # Another kind of identity is refused by reply_target; a foreign page's PSID fails in send.
        if identity is not None and identity.kind == channel.kind:
            self.messaging_type(channel, identity, human=True)

    def _send(self, channel: Channel, identity: Identity, text: str, attachments=(), *, human: bool) -> SendResult:
        token = channel.secret("page_access_token")
        if not token:
            raise PermanentSendError("The channel has no page access token.")
        try:
            kind = self.messaging_type(channel, identity, human=human)
        except ChannelWindowExpired as exc:
            raise PermanentSendError(exc.message) from None
        base = {"recipient": {"id": identity.value}, **kind}
        chunks = [text[i:i + TEXT_LIMIT] for i in range(0, len(text), TEXT_LIMIT)] if text else []
        sent: list[str] = []
        parts = [(chunk, None) for chunk in chunks] + [(None, a) for a in attachments]
        for chunk, attachment in parts:
            try:
                if attachment is None:
                    body = graph.send(token=token, body={**base, "message": {"text": chunk}})
                else:
                    with attachment.file.open("rb") as handle:
                        data = handle.read()
                    media = attachment.content_type.split("/")[0]
                    media = media if media in ("image", "video", "audio") else "file"
                    body = graph.send(
                        token=token,
                        body={**base, "message": {"attachment": {"type": media, "payload": {"is_reusable": False}}}},
                        files={"filedata": (attachment.filename, data, attachment.content_type)},
                    )
            except Exception as exc:
                if not sent:
                    raise
                # Part of the message is with the customer already: re-sending would repeat it.
                raise UnknownOutcome(f"Only part of the message was sent ({len(sent)} of {len(parts)}): {exc}") from None
            sent.append(str(body.get("message_id", "")))
        if not sent:
            raise PermanentSendError("Nothing to send: the message has no text and no attachment.")
        return SendResult(provider_message_id=sent[0], data={"meta_message_ids": sent, **kind})

    def send(self, entry: TimelineEntry) -> SendResult:
        identity = entry.identity
        if identity is None or identity.kind != entry.channel.kind or identity.namespace != self.namespace(entry.channel):
            raise PermanentSendError(f"The customer cannot be reached on this {entry.channel.get_kind_display()} channel.")
        human = entry.author_user_id is not None and not entry.is_auto_reply
        return self._send(entry.channel, identity, entry.text, list(entry.attachments.all()), human=human)

    def send_text(self, channel: Channel, address: str, text: str, *, subject: str = "") -> None:
        identity = self._identity(channel, address)
        if identity is None:
            raise PermanentSendError("This person has never written to the page; Meta allows no message to them.")
        self._send(channel, identity, f"{subject}\n\n{text}" if subject else text, human=False)

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        return {"webhook": settings.PUBLIC_BASE_URL + reverse("meta-webhook", args=[channel.key])}

    def test_connection(self, channel: Channel) -> tuple[bool, str]:
        from channels_inbound.base import PermanentSendError as Refused
        from channels_inbound.base import TransientSendError

        token = channel.secret("page_access_token")
        if not token:
            return False, str(_("The channel has no page access token."))
        try:
            from channels_inbound.provider_http import call

            body = graph.raise_for_graph(
                call("GET", graph.url("me"), what="the Graph API", params={"fields": "id,name", "access_token": token}),
                what="token check",
            )
        except (Refused, TransientSendError, UnknownOutcome) as exc:
            return False, str(exc)
        return True, str(_("Connected to %(name)s (%(id)s).") % {"name": body.get("name", "?"), "id": body.get("id", "?")})


def _enqueue(task, *args) -> None:
    try:
        task.apply_async(args=list(args), retry=False)
    except Exception:
        logger.warning("could not enqueue %s%s", task.name, args, exc_info=True)


@register
class MessengerAdapter(MetaAdapter):
    kinds = ("messenger",)
    settings_serializer = MessengerSettings
    secret_fields = ("page_access_token", "app_secret")
    identity_kinds = ("messenger",)


@register
class InstagramAdapter(MetaAdapter):
    kinds = ("instagram",)
    settings_serializer = InstagramSettings
    secret_fields = ("page_access_token", "app_secret")
    identity_kinds = ("instagram",)
    id_setting = "instagram_account_id"
    profile_fields = "name,username"
