"""`/ws/widget/<key>/`: the chat widget's socket. Thin (STYLE.md rule 9): checks the origin, waits
for the token, then forwards frames to channels_inbound.webchat.services and pushes back what the
visitor's group receives.

Frames from the widget: auth, message, callback, typing, delivered, read, survey_answer, transcript,
email_code, email_confirm, ping.
Frames to the widget: ready, ack, message, typing, seen, survey, notice, transcript_queued,
email_code_sent, email_verified, error, pong
(docs/channels/webchat.md lists their fields).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import override

from channels_inbound.webchat import mailing, services, tokens
from channels_inbound.webchat.adapter import normalize_origin
from omnicenter.consumers import JsonConsumer
from omnicenter.errors import DomainError

UNAUTHORIZED = 4401
TYPING_EVERY = 2.0  # seconds between typing hints forwarded per socket
MAX_FRAME_CHARS = 8 * 1024 * 1024  # base64 of WEBCHAT_ATTACHMENT_MAX_BYTES plus the text


def _db(function):
    """Database work of one frame, self-contained (its own transaction): run on the thread pool,
    not on Channels' one thread-sensitive thread, so that visitors do not queue behind each other."""
    return database_sync_to_async(function, thread_sensitive=False)


@_db
def _channel(key: str):
    from channels_inbound.selectors import channel_for_webhook

    return channel_for_webhook(key, kinds=("webchat",))


@_db
def _welcome(channel, visitor: tokens.Visitor, after: str) -> dict:
    return services.visitor_welcome(channel=channel, visitor=visitor, after=after)


async def _cache_call(function, **kwargs):
    # Cache (Redis) work only: off the event loop, without the database connection handling.
    return await sync_to_async(function, thread_sensitive=False)(**kwargs)


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _client_ip(scope) -> str:
    forwarded = [p.strip() for p in _header(scope, b"x-forwarded-for").split(",") if p.strip()]
    if settings.NUM_PROXIES and forwarded:
        return forwarded[-min(settings.NUM_PROXIES, len(forwarded))]
    client = scope.get("client") or ("", 0)
    return client[0] or ""


class WidgetConsumer(JsonConsumer):
    async def connect(self) -> None:
        self.visitor: tokens.Visitor | None = None
        self.group = ""
        self.last_typing = 0.0
        self.channel_row = await _channel(self.scope["url_route"]["kwargs"]["key"])
        if self.channel_row is None:
            await self.close()  # before accept: the handshake is refused (403)
            return
        allowed = set((self.channel_row.settings or {}).get("allowed_origins") or [])
        try:
            origin = normalize_origin(_header(self.scope, b"origin"))
        except ValueError:
            origin = ""
        if origin not in allowed:
            await self.close()
            return
        await self.accept()
        self.deadline = asyncio.create_task(self._close_unless_authenticated())

    async def _close_unless_authenticated(self) -> None:
        await asyncio.sleep(settings.WEBCHAT_AUTH_TIMEOUT)
        if self.visitor is None:
            await self.send_json({"type": "error", "code": "auth_timeout", "message": _("Not authenticated in time.")})
            await self.close(code=UNAUTHORIZED)

    async def disconnect(self, code: int) -> None:
        deadline = getattr(self, "deadline", None)
        if deadline is not None and deadline is not asyncio.current_task():
            deadline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deadline
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await _cache_call(services.visitor_presence_change, visitor=self.visitor, delta=-1)

    async def decode_json(self, text_data):
        if len(text_data) > MAX_FRAME_CHARS:
            return {"type": "oversized"}
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return {"type": "invalid"}

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if self.visitor is None:
            await self._authenticate(content if kind == "auth" else {})
            return
        handler = {
            "message": self._message, "callback": self._callback, "typing": self._typing,
            "delivered": self._receipt, "read": self._receipt, "survey_answer": self._survey_answer,
            **dict.fromkeys(mailing.REQUEST_FRAMES, self._request),
        }.get(kind)
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "oversized":
            await self._error("too_large", _("That is too large to send."))
        elif handler is None:
            await self._error("bad_request", _("Unknown frame type."))
        else:
            with override((self.channel_row.settings or {}).get("language") or None):
                await handler(content)

    async def _error(self, code: str, message: str, ref: str = "") -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **({"ref": ref} if ref else {})})

    async def _authenticate(self, content: dict) -> None:
        visitor = tokens.read(content.get("token"), channel_key=self.channel_row.key)
        if visitor is None:
            await self._error("unauthorized", _("The chat session is not valid; start a new one."))
            await self.close(code=UNAUTHORIZED)
            return
        self.visitor = visitor
        self.group = services.visitor_group(visitor.channel_key, visitor.id)
        self.deadline.cancel()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await _cache_call(services.visitor_presence_change, visitor=visitor, delta=1)
        after = content.get("after") if isinstance(content.get("after"), str) else ""
        await self.send_json(await _welcome(self.channel_row, visitor, after))

    def _rate_ok(self) -> bool:
        return services.rate_allow_all([(f"v:{self.group}", settings.WEBCHAT_RATE_VISITOR),
                                        (f"ip:{_client_ip(self.scope)}", settings.WEBCHAT_RATE_IP)])

    async def _post(self, content: dict, call) -> None:
        ref = content.get("id") if isinstance(content.get("id"), str) else ""
        if not await _cache_call(self._rate_ok):
            await self._error("rate_limited", _("You are sending messages too fast; wait a moment."), ref)
            return
        try:
            posted = await _db(call)()
        except DomainError as exc:
            await self._error(getattr(exc, "code", "invalid"), exc.message, ref)
            return
        await self.send_json({"type": "ack", "id": ref, "duplicate": posted.duplicate, "message": posted.frame})

    async def _message(self, content: dict) -> None:
        await self._post(content, lambda: services.visitor_message_post(
            channel=self.channel_row, visitor=self.visitor, client_id=content.get("id"), text=content.get("text", ""),
            profile=content.get("profile"), attachments=content.get("attachments"), page=content.get("page", ""),
        ))

    async def _request(self, content: dict) -> None:
        """Transcript by email, and confirming an email by a one-time code (webchat/mailing.py)."""
        ref = content.get("id") if isinstance(content.get("id"), str) else ""
        try:
            answer = await _db(mailing.visitor_request)(
                channel=self.channel_row, visitor=self.visitor, frame=content, ip=_client_ip(self.scope)
            )
        except DomainError as exc:
            await self._error(getattr(exc, "code", "invalid"), exc.message, ref)
            return
        await self.send_json(answer)

    async def _callback(self, content: dict) -> None:
        await self._post(content, lambda: services.visitor_callback_request(
            channel=self.channel_row, visitor=self.visitor, client_id=content.get("id"), phone=content.get("phone"),
            preferred_time=content.get("time"), name=content.get("name", ""),
        ))

    async def _typing(self, content: dict) -> None:
        now = time.monotonic()
        if now - self.last_typing < TYPING_EVERY:
            return
        self.last_typing = now
        await _db(services.visitor_typing)(visitor=self.visitor)

    async def _receipt(self, content: dict) -> None:
        await _db(services.visitor_receipt)(
            visitor=self.visitor, ids=content.get("ids"), status=content["type"]
        )

    async def _survey_answer(self, content: dict) -> None:
        try:
            await _db(services.survey_answer_receive)(
                visitor=self.visitor, survey_id=content.get("id"), rating=content.get("rating")
            )
        except DomainError as exc:
            await self._error(getattr(exc, "code", "invalid"), exc.message)
            return
        await self.send_json({"type": "survey_thanks", "id": content.get("id")})

    # --- from the channel layer ---

    async def widget_message(self, event: dict) -> None:
        await self.send_json({"type": "message", "message": event["message"]})

    async def widget_frame(self, event: dict) -> None:
        await self.send_json(event["frame"])

    async def widget_notice(self, event: dict) -> None:
        await self.send_json({"type": "notice", "text": event["text"]})
