"""Telegram bots: updates arrive on `/webhooks/telegram/<key>` with the secret token Telegram was
given at setWebhook; replies go out through sendMessage, sendPhoto and sendDocument.

Telegram user ids are global (the same person has the same id with every bot), so the identity
needs no namespace: a customer who writes to two of our bots is one customer. Only private chats
are handled; updates from groups and channels are stored and ignored.
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from channels_inbound import social
from channels_inbound.base import (
    Adapter,
    NormalizedMessage,
    PermanentSendError,
    Rejected,
    SendResult,
    TransientSendError,
    UnknownOutcome,
)
from channels_inbound.models import Channel
from channels_inbound.provider_http import MediaUnavailable
from channels_inbound.registry import register
from channels_inbound.telegram import botapi, tasks
from customers import identities
from customers.models import Customer, Identity
from customers.services import merge_suggestion_record

if TYPE_CHECKING:
    from channels_inbound.models import InboundEvent
    from tickets.models import TimelineEntry

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BOT_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,100}$")


class TelegramSettings(serializers.Serializer):
    bot_token = serializers.CharField(
        max_length=200, help_text=gettext_lazy("The token @BotFather gave (secret, stored encrypted).")
    )

    def validate_bot_token(self, value: str) -> str:
        if not _TOKEN.match(value.strip()):
            raise serializers.ValidationError(gettext_lazy("Not a bot token (it looks like 123456:ABC-DEF…)."))
        return value.strip()


def _when(seconds) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _name(user: dict) -> str:
    return " ".join(filter(None, [user.get("first_name", ""), user.get("last_name", "")])) or user.get("username", "")


def _media(message: dict) -> tuple[list[dict], list[dict]]:
    """Files to download (largest photo size, documents, voice notes, audio, video) and those
    refused up front for their announced size."""
    files: list[dict] = []
    if message.get("photo"):
        largest = message["photo"][-1]  # sizes come smallest first
        files.append({"file_id": largest.get("file_id"), "filename": "photo.jpg", "size": largest.get("file_size")})
    for field, default in (("document", "document"), ("voice", "voice.ogg"), ("audio", "audio"),
                           ("video", "video.mp4"), ("video_note", "video_note.mp4"), ("animation", "animation.mp4")):
        item = message.get(field)
        if isinstance(item, dict) and item.get("file_id"):
            files.append({"file_id": item["file_id"], "filename": item.get("file_name") or default, "size": item.get("file_size")})
    if isinstance(message.get("sticker"), dict) and message["sticker"].get("file_id"):
        sticker = message["sticker"]
        files.append({"file_id": sticker["file_id"], "filename": "sticker.webp", "size": sticker.get("file_size")})
    limit = min(settings.ATTACHMENT_MAX_BYTES, BOT_DOWNLOAD_LIMIT)
    pending = [f for f in files if not (f.get("size") or 0) > limit]
    refused = [
        {"filename": f["filename"], "error": f"{f['size']} bytes, above the limit of {limit}"}
        for f in files if (f.get("size") or 0) > limit
    ]
    return [{k: v for k, v in f.items() if k != "size"} for f in pending], refused


@register
class TelegramAdapter(Adapter):
    kinds = ("telegram",)
    settings_serializer = TelegramSettings
    secret_fields = ("bot_token",)
    generated_secrets = ("secret_token",)
    identity_kinds = ("telegram",)
    can_send_text = True

    def verify(self, request, channel: Channel) -> None:
        given = request.headers.get(SECRET_HEADER, "")
        if not given:
            raise Rejected("missing X-Telegram-Bot-Api-Secret-Token", status=403)
        expected = channel.secret("secret_token")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Rejected("wrong X-Telegram-Bot-Api-Secret-Token", status=403)

    # --- inbound -------------------------------------------------------------------------------
    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        update = event.payload
        channel = event.channel
        if isinstance(update.get("edited_message"), dict):
            edited = update["edited_message"]
            if (edited.get("chat") or {}).get("type") == "private":
                social.entry_record_edit(
                    channel=channel, provider_message_id=f"{edited['chat']['id']}:{edited.get('message_id')}",
                    text=edited.get("text") or edited.get("caption") or "", at=_when(edited.get("edit_date")),
                )
            return []
        if isinstance(update.get("callback_query"), dict):
            query = update["callback_query"]
            sender = query.get("from") or {}
            if not sender.get("id") or sender.get("is_bot"):
                return []
            return [NormalizedMessage(
                provider_message_id=f"callback:{query.get('id')}", sender=[self._claim(sender)], display_name=_name(sender),
                text=str(query.get("data", ""))[:4096],
                data={"callback_data": str(query.get("data", ""))[:256], "callback_query_id": str(query.get("id", ""))},
                language=sender.get("language_code", "")[:8],
            )]
        message = update.get("message")
        if not isinstance(message, dict) or (message.get("chat") or {}).get("type") != "private":
            return []
        sender = message.get("from") or {}
        if not sender.get("id") or sender.get("is_bot"):
            return []
        claims = [self._claim(sender)]
        lines = [message.get("text") or message.get("caption") or ""]
        data: dict = {}
        contact = message.get("contact")
        if isinstance(contact, dict) and contact.get("phone_number"):
            lines.append(_("Shared a contact: %(name)s %(phone)s") % {"name": _name(contact), "phone": contact["phone_number"]})
            if contact.get("user_id") == sender.get("id"):
                # The sender's own number (Telegram fills user_id): offered to the agent, never merged.
                try:
                    phone = identities.normalize_phone("+" + contact["phone_number"].lstrip("+"))
                    claims.append(identities.claim(Identity.Kind.PHONE, phone, verified=False, display_name=_name(sender)))
                    data["shared_phone"] = phone
                except identities.InvalidIdentity:
                    pass
        location = message.get("location")
        if isinstance(location, dict):
            lines.append(f"📍 {location.get('latitude')}, {location.get('longitude')}")
        pending, refused = _media(message)
        if pending:
            data["pending_media"] = pending
        if refused:
            data["media_failed"] = refused
        if (message.get("reply_to_message") or {}).get("message_id"):
            data["reply_to"] = f"{message['chat']['id']}:{message['reply_to_message']['message_id']}"
        return [NormalizedMessage(
            provider_message_id=f"{message['chat']['id']}:{message.get('message_id')}", sender=claims,
            display_name=_name(sender), text="\n".join(filter(None, lines)), data=data,
            timestamp=_when(message.get("date")), language=sender.get("language_code", "")[:8],
        )]

    def _claim(self, user: dict) -> identities.IdentityClaim:
        return identities.claim(Identity.Kind.TELEGRAM, str(user["id"]), display_name=_name(user))

    def after_ingest(self, entry: TimelineEntry) -> None:
        if entry.data.get("pending_media"):
            transaction.on_commit(lambda: _enqueue(tasks.fetch_media, entry.pk), robust=True)
        if entry.data.get("callback_query_id") and not entry.data.get("callback_answered"):
            # Telegram shows a spinner on the pressed button until the bot answers the query.
            transaction.on_commit(lambda: _enqueue(tasks.answer_callback, entry.pk), robust=True)
        phone = entry.data.get("shared_phone")
        if phone:
            holder = (
                Identity.objects.filter(kind=Identity.Kind.PHONE, value=phone, verified=True)
                .exclude(customer_id=entry.author_customer_id).select_related("customer").first()
            )
            if holder is not None and entry.author_customer_id:
                merge_suggestion_record(
                    customer=Customer.objects.get(pk=entry.author_customer_id), other=holder.customer,
                    reason=f"shared their phone number {phone} on Telegram",
                )

    def fetch_media(self, channel: Channel, item: dict):
        try:
            return botapi.file_download(
                channel.secret("bot_token"), item.get("file_id", ""),
                max_bytes=min(settings.ATTACHMENT_MAX_BYTES, BOT_DOWNLOAD_LIMIT),
            )
        except (PermanentSendError, UnknownOutcome) as exc:
            raise MediaUnavailable(str(exc)) from None

    # --- outbound ------------------------------------------------------------------------------
    def _send(self, channel: Channel, chat_id: str, text: str, attachments=()) -> SendResult:
        token = channel.secret("bot_token")
        if not token:
            raise PermanentSendError("The channel has no bot token.")
        calls: list[tuple[str, dict, dict | None]] = []
        attachments = list(attachments)
        if len(attachments) == 1 and len(text) <= CAPTION_LIMIT:
            caption, text = text, ""
        else:
            caption = ""
        for chunk in [text[i:i + TEXT_LIMIT] for i in range(0, len(text), TEXT_LIMIT)]:
            calls.append(("sendMessage", {"chat_id": chat_id, "text": chunk}, None))
        for attachment in attachments:
            photo = attachment.content_type in ("image/jpeg", "image/png", "image/webp")
            field = "photo" if photo else "document"
            with attachment.file.open("rb") as handle:
                data = handle.read()
            form = {"chat_id": chat_id, **({"caption": caption} if caption else {})}
            calls.append(("sendPhoto" if photo else "sendDocument", form, {field: (attachment.filename, data, attachment.content_type)}))
        if not calls:
            raise PermanentSendError("Nothing to send: the message has no text and no attachment.")
        sent: list[str] = []
        for method, body, files in calls:
            try:
                result = botapi.request(token, method, **({"data": body, "files": files} if files else {"json": body}))
            except (TransientSendError, PermanentSendError, UnknownOutcome) as exc:
                if not sent:
                    raise
                raise UnknownOutcome(f"Only part of the message was sent ({len(sent)} of {len(calls)}): {exc}") from None
            sent.append(f"{(result.get('chat') or {}).get('id', chat_id)}:{result.get('message_id', '')}")
        return SendResult(provider_message_id=sent[0], data={"telegram_message_ids": sent})

    def send(self, entry: TimelineEntry) -> SendResult:
        identity = entry.identity
        if identity is None or identity.kind != Identity.Kind.TELEGRAM:
            raise PermanentSendError("The customer cannot be reached on this Telegram channel.")
        return self._send(entry.channel, identity.value, entry.text, entry.attachments.all())

    def send_text(self, channel: Channel, address: str, text: str, *, subject: str = "") -> None:
        self._send(channel, address, f"{subject}\n\n{text}" if subject else text)

    # --- setup ---------------------------------------------------------------------------------
    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        return {"webhook": settings.PUBLIC_BASE_URL + reverse("telegram-webhook", args=[channel.key])}

    def channel_created(self, channel: Channel) -> None:
        _enqueue(tasks.register_webhook, channel.pk)

    def test_connection(self, channel: Channel) -> tuple[bool, str]:
        from channels_inbound.telegram.services import telegram_register_webhook

        try:
            me = telegram_register_webhook(channel=channel)
        except (TransientSendError, PermanentSendError, UnknownOutcome) as exc:
            return False, str(exc)
        return True, _("Connected as @%(bot)s; the webhook is registered at %(url)s.") % {
            "bot": me.get("username", "?"), "url": self.webhook_urls(channel)["webhook"],
        }


def _enqueue(task, *args) -> None:
    try:
        task.apply_async(args=list(args), retry=False)
    except Exception:
        logger.warning("could not enqueue %s%s", task.name, args, exc_info=True)


