"""The base of our websocket consumers (tickets/consumers.py, channels_inbound/webchat/consumers.py)."""

from __future__ import annotations

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """Channels' JSON consumer without its database housekeeping before every message.

    Channels 4.2+ runs `close_old_connections` on its one thread-sensitive thread before each
    handler, for consumers that touch the ORM directly. Ours never do: every database call goes
    through `database_sync_to_async`, which closes old connections itself, before and after, on
    the thread that used them. The housekeeping was a thread handoff for every frame and every
    live event each socket receives (one chat message reaches 20 agent sockets through two groups
    each): about a tenth of the websocket process's CPU in bench/chat.py (docs/performance.md).
    """

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
