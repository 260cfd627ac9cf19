"""`/ws/agent/`: live hints for signed-in staff. Authenticates, joins permission-scoped groups,
forwards events. No domain logic here (STYLE.md rule 9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque

from channels.db import database_sync_to_async

from omnicenter import events, roles
from omnicenter.consumers import JsonConsumer

UNAUTHORIZED = 4401
RECENT_EVENTS = 256  # remembered per socket to drop the copies that arrive through other groups


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


@database_sync_to_async
def _may_see(user_id: int, ticket_id: int) -> bool:
    from django.contrib.auth import get_user_model

    from tickets.selectors import tickets_visible_to

    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and tickets_visible_to(user).filter(pk=ticket_id).exists()


@database_sync_to_async
def _on_connect(user_id: int) -> tuple[str, str]:
    """The agent's display name, and their presence now: connecting makes them online unless they
    set a status by hand. One trip to the database thread."""
    from django.contrib.auth import get_user_model

    from tickets import services
    from tickets.models import AgentPresence

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return "", "offline"
    services.presence_set(user=user, status="online", manual=False)
    status = AgentPresence.objects.filter(user=user).values_list("status", flat=True).first() or "online"
    return user.display_name, status


@database_sync_to_async
def _presence_touch(user_id: int) -> None:
    from tickets import services

    services.presence_touch(user_id=user_id)


TYPING_MIN_INTERVAL = 1.0  # seconds


class AgentConsumer(JsonConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        session = self.scope.get("session")
        self.joined: list[str] = []
        # The keys of the last RECENT_EVENTS events, in order (to forget the oldest) and as a set
        # (to look one up without comparing it with all of them: two per event on a busy inbox).
        self.recent_events: deque[str] = deque()
        self.recent_keys: set[str] = set()
        if user is None or not user.is_authenticated or session is None or not session.session_key:
            await self.close(code=UNAUTHORIZED)
            return
        groups = await _groups_for(user)
        if not groups:
            await self.close(code=UNAUTHORIZED)
            return
        groups.append(events.session_group(session.session_key))
        await self._join(groups)
        self.watching: int | None = None
        self.display_name, self.presence = await _on_connect(user.pk)
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
        await self._unwatch()

    async def receive_json(self, content, **kwargs) -> None:
        # Clients ping (presence) and say which ticket they have open and whether they type in it
        # (collision detection); anything they want to read comes over HTTP.
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "hello":
            await self.send_json({"type": "presence", "status": self.presence})
        elif kind == "ping":
            await _presence_touch(self.scope["user"].pk)
            await self.send_json({"type": "pong"})
        elif kind == "watch":
            await self._watch(content.get("ticket"))
        elif kind == "typing" and self.watching is not None and content.get("ticket") == self.watching:
            # At most one typing hint a second per socket, whatever the client sends.
            now = asyncio.get_running_loop().time()
            if now - getattr(self, "typing_at", 0.0) >= TYPING_MIN_INTERVAL:
                self.typing_at = now
                await self._tell_watchers("typing")
        elif kind == "unwatch":
            await self._unwatch()

    async def _watch(self, ticket_id) -> None:
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool) or not 0 < ticket_id < 2**63:
            return
        if ticket_id != self.watching:
            await self._unwatch()
            # The agent may only hear about tickets they may open (the same rule as the pages).
            if not await _may_see(self.scope["user"].pk, ticket_id):
                return
            self.watching = ticket_id
            await self.channel_layer.group_add(events.ticket_watch_group(ticket_id), self.channel_name)
        await self._tell_watchers("viewing")

    async def _unwatch(self) -> None:
        if getattr(self, "watching", None) is None:
            return
        await self._tell_watchers("left")
        await self.channel_layer.group_discard(events.ticket_watch_group(self.watching), self.channel_name)
        self.watching = None

    async def _tell_watchers(self, state: str) -> None:
        await self.channel_layer.group_send(events.ticket_watch_group(self.watching), {
            "type": "oc.collision", "from": self.channel_name, "ticket": self.watching,
            "user": self.scope["user"].pk, "name": self.display_name, "state": state,
        })

    async def oc_collision(self, message: dict) -> None:
        if message["from"] == self.channel_name or message["ticket"] != self.watching:
            return
        await self.send_json({key: message[key] for key in ("ticket", "user", "name", "state")} | {"type": "collision"})

    async def oc_event(self, message: dict) -> None:
        await self._forward(message["event"])

    async def oc_events(self, message: dict) -> None:
        # Several events at once, from a batch of inbound messages (events.batched).
        for event in message["events"]:
            await self._forward(event)

    async def _forward(self, event: dict) -> None:
        # An event is sent to each of its groups, and a socket in several of them (team, agent,
        # supervisors) gets one copy per group: forward it once.
        key = json.dumps(event, sort_keys=True)
        if key in self.recent_keys:
            return
        if len(self.recent_events) >= RECENT_EVENTS:
            self.recent_keys.discard(self.recent_events.popleft())
        self.recent_events.append(key)
        self.recent_keys.add(key)
        await self.send_json(event)

    async def oc_session_closed(self, message: dict) -> None:
        await self.close(code=UNAUTHORIZED)

    async def oc_refresh_groups(self, message: dict) -> None:
        groups = await _groups_for(self.scope["user"])
        if not groups:
            await self.close(code=UNAUTHORIZED)
            return
        await self._join([*groups, events.session_group(self.scope["session"].session_key)])
        if self.watching is not None and not await _may_see(self.scope["user"].pk, self.watching):
            await self.channel_layer.group_discard(events.ticket_watch_group(self.watching), self.channel_name)
            self.watching = None
