"""`/ws/agent/`: live hints for signed-in staff. Authenticates, joins permission-scoped groups,
forwards events. No domain logic here (STYLE.md rule 9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from omnicenter import events, roles

UNAUTHORIZED = 4401
RECENT_EVENTS = 64  # remembered per socket to drop the copies that arrive through other groups


@database_sync_to_async
def _session_seconds_left(session_key: str) -> float | None:
    """Seconds until the session expires, or None when it no longer exists (flushed at logout).

    Both session engines in use (db, cached_db) keep the authoritative expiry in the database.
    """
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    expires = Session.objects.filter(session_key=session_key).values_list("expire_date", flat=True).first()
    return None if expires is None else (expires - timezone.now()).total_seconds()


@database_sync_to_async
def _groups_for(user) -> list[str]:
    from django.contrib.auth import get_user_model

    from tickets.selectors import team_ids_of

    # A fresh row each time: the scope's user is a lazy proxy whose cached roles and teams would
    # survive a refresh, and the account may have been deactivated since the socket connected.
    user = get_user_model().objects.filter(pk=user.pk).first()
    if user is None or not roles.is_agent(user):
        return []
    groups = [events.agent_group(user.pk), *(events.team_group(t) for t in team_ids_of(user))]
    if roles.is_supervisor(user):
        groups.append(events.SUPERVISORS)
    return groups


class AgentConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        session = self.scope.get("session")
        self.joined: list[str] = []
        self.recent_events: deque[str] = deque(maxlen=RECENT_EVENTS)
        if user is None or not user.is_authenticated or session is None or not session.session_key:
            await self.close(code=UNAUTHORIZED)
            return
        groups = await _groups_for(user)
        if not groups:
            await self.close(code=UNAUTHORIZED)
            return
        groups.append(events.session_group(session.session_key))
        await self._join(groups)
        await self.accept()
        self.expiry_watch = asyncio.create_task(self._close_when_session_ends(session.session_key))

    async def _close_when_session_ends(self, session_key: str) -> None:
        # A logout closes the socket through its session group; an expiring session has no such
        # moment, so wait for it (re-reading it, since activity may have extended it).
        while True:
            left = await _session_seconds_left(session_key)
            if left is None or left <= 0:
                await self.close(code=UNAUTHORIZED)
                return
            await asyncio.sleep(min(left, 3600) + 1)

    async def _join(self, groups: list[str]) -> None:
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups

    async def disconnect(self, code: int) -> None:
        watch = getattr(self, "expiry_watch", None)
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # Clients only ping; anything they want comes over HTTP.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def oc_event(self, message: dict) -> None:
        # An event is sent to each of its groups, and a socket in several of them (team, agent,
        # supervisors) gets one copy per group: forward it once.
        key = json.dumps(message["event"], sort_keys=True)
        if key in self.recent_events:
            return
        self.recent_events.append(key)
        await self.send_json(message["event"])

    async def oc_session_closed(self, message: dict) -> None:
        await self.close(code=UNAUTHORIZED)

    async def oc_refresh_groups(self, message: dict) -> None:
        groups = await _groups_for(self.scope["user"])
        if not groups:
            await self.close(code=UNAUTHORIZED)
            return
        await self._join([*groups, events.session_group(self.scope["session"].session_key)])
