"""Live events: small hints pushed to websocket groups after the transaction commits.

Only services publish (STYLE.md rule 8). Every event is `{"type", "ticket", "version"}`; pages
re-fetch the changed fragment from the server, so no HTML or customer data travels here, and a
missed event costs nothing but a refresh (clients also catch up on reconnect and tab focus).

Event types and who receives them (choosing recipients is a security decision):

| type | sent when | groups |
|---|---|---|
| `ticket.created` | a ticket is opened | the ticket's team, its assignee, supervisors |
| `ticket.updated` | status, priority, team, assignee or tags change | the ticket's team, assignee, supervisors, plus the previous team and assignee |
| `timeline.appended` | a message, note, call or system entry is added | the ticket's team, assignee, supervisors |
| `message.status` | an outbound message moves to sent, delivered, read, failed or unknown, or its recipient reports it as spam | the ticket's team, assignee, supervisors |

Personal notices (`publish_personal`, agent group only): `mention` (an internal note mentions
the agent) and `assigned` (a ticket was assigned to the agent): `{"type", "ticket", "version"}`.
Collision hints (`viewing`, `typing`) go through `ticket.<id>` groups the consumer joins after
checking the agent may see the ticket (tickets/consumers.py).

Bulk work (a mailbox import) holds ticket events with `held_ticket_events()` and publishes, after
each commit, only the latest one per audience (`publish_held`): every page showing those tickets
refreshes its lists once instead of once per message, and an open ticket that was not the latest
catches up on focus or reconnect, as after any missed event.

Groups: `team.<id>` (members of a team), `agent.<user id>` (one person), `supervisors`
(supervisors and admins), `session.<hash>` (control messages for one login session).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from tickets.models import Ticket

logger = logging.getLogger(__name__)

SUPERVISORS = "supervisors"
SEND_TIMEOUT = 5.0
EVENT_TYPES = ("ticket.created", "ticket.updated", "timeline.appended", "message.status")


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


def session_group(session_key: str) -> str:
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def ticket_groups(ticket: Ticket, *, previous_team_id: int | None = None, previous_assignee_id: int | None = None) -> set[str]:
    groups = {SUPERVISORS}
    for team_id in (ticket.team_id, previous_team_id):
        if team_id:
            groups.add(team_group(team_id))
    for user_id in (ticket.assignee_id, previous_assignee_id):
        if user_id:
            groups.add(agent_group(user_id))
    return groups


def publish_ticket_event(event_type: str, ticket: Ticket, **previous: Any) -> None:
    """Schedule `event_type` for `ticket` to everyone allowed to see it, after commit."""
    assert event_type in EVENT_TYPES, event_type
    event = {"type": event_type, "ticket": ticket.pk, "version": ticket.version}
    groups = sorted(ticket_groups(ticket, **previous))
    pending = _held.get()
    if pending is not None:
        pending.pop(tuple(groups), None)  # re-inserted last: the latest event per audience wins
        pending[tuple(groups)] = event
        return
    transaction.on_commit(lambda: send_now(groups, {"type": "oc.event", "event": event}), robust=True)


HeldEvents = dict[tuple[str, ...], dict[str, Any]]
_held: ContextVar[HeldEvents | None] = ContextVar("omnicenter_held_events", default=None)


@contextlib.contextmanager
def held_ticket_events() -> Iterator[HeldEvents]:
    """Inside the block, ticket events are held (latest per audience) instead of scheduled; send
    them with `publish_held` after the work commits, or clear them if it was rolled back."""
    pending: HeldEvents = {}
    token = _held.set(pending)
    try:
        yield pending
    finally:
        _held.reset(token)


def publish_held(pending: HeldEvents) -> None:
    """Send held events after commit (at once in autocommit), one per audience."""
    for groups, event in pending.items():
        transaction.on_commit(partial(send_now, list(groups), {"type": "oc.event", "event": event}), robust=True)
    pending.clear()


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a daemon thread, for sending from sync code.

    async_to_sync would run each send on a new loop, and channels_redis keeps its connection pool
    per loop: every event paid a new Redis connection (2.2-2.6 ms of CPU against 0.2 ms here;
    docs/performance.md). The pid check gives forked workers their own loop.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="omnicenter-events", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


_batch = threading.local()


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Hold the ticket events sent in this thread and send them together at the end.

    Inbound processing drains events in batches (channels_inbound.services); a batch of 50
    messages would cost 150 group sends (0.2-0.5 ms of CPU each), and now costs one per group,
    carrying every event of the batch that group should see, each (type, ticket) once at its
    latest version. Nested uses join the outer batch.
    """
    if getattr(_batch, "pending", None) is not None:
        yield
        return
    _batch.pending = {}
    try:
        yield
    finally:
        pending, _batch.pending = _batch.pending, None
        for group, by_key in pending.items():
            ticket_events = list(by_key.values())
            if len(ticket_events) == 1:
                send_now([group], {"type": "oc.event", "event": ticket_events[0]})
            else:
                send_now([group], {"type": "oc.events", "events": ticket_events})


def _hold(groups: list[str], message: dict) -> bool:
    pending = getattr(_batch, "pending", None)
    if pending is None or message.get("type") != "oc.event":
        return False
    event = message["event"]
    for group in groups:
        by_key = pending.setdefault(group, {})
        key = (event["type"], event["ticket"])
        held = by_key.get(key)
        if held is None or held.get("version", 0) <= event.get("version", 0):
            by_key.pop(key, None)  # re-inserted last: the group's events stay in the order they happened
            by_key[key] = event
    return True


def send_now(groups: Iterable[str], message: dict) -> None:
    """Send one message to several groups. Failures are logged, never raised: live events are
    hints and clients catch up from the server. Inside `batched()`, ticket events wait for the end."""
    groups = list(groups)
    if _hold(groups, message):
        return
    layer = get_channel_layer()
    if layer is None:
        return

    async def _send() -> None:
        for group in groups:
            await layer.group_send(group, message)

    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Embedded mode: the layer's queues belong to the server's own loop, which
            # async_to_sync reaches from the request's thread.
            async_to_sync(_send)()
        else:
            asyncio.run_coroutine_threadsafe(_send(), _publisher_loop()).result(timeout=SEND_TIMEOUT)
    except Exception:
        logger.warning("live event to %s not delivered", groups, exc_info=True)


def publish_session_closed(session_key: str) -> None:
    transaction.on_commit(
        lambda: send_now([session_group(session_key)], {"type": "oc.session_closed"}), robust=True
    )


def publish_membership_changed(user_id: int) -> None:
    transaction.on_commit(lambda: send_now([agent_group(user_id)], {"type": "oc.refresh_groups"}), robust=True)


PERSONAL_TYPES = ("mention", "assigned")


def publish_personal(event_type: str, user_id: int, ticket: Ticket) -> None:
    """A notice for one agent (mentioned, assigned), after commit."""
    assert event_type in PERSONAL_TYPES, event_type
    event = {"type": event_type, "ticket": ticket.pk, "version": ticket.version}
    transaction.on_commit(lambda: send_now([agent_group(user_id)], {"type": "oc.event", "event": event}), robust=True)


def ticket_watch_group(ticket_id: int) -> str:
    """Agents who have a ticket open (collision detection: viewing, typing)."""
    return f"ticket.{ticket_id}"
