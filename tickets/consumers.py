"""`/ws/agent/`: live hints for signed-in staff. Authenticates, joins permission-scoped groups,
forwards events. No domain logic here (STYLE.md rule 9)."""

from __future__ import annotations

import json
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from omnicenter import events, roles

UNAUTHORIZED = 4401
RECENT_EVENTS = 64  # remembered per socket to drop the copies that arrive through other groups


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

    async def _join(self, groups: list[str]) -> None:
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups

    async def disconnect(self, code: int) -> None:
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
