"""`/ws/agent/`: who receives which live event (omnicenter/events.py), and when a socket is closed.

Over the network against the real ASGI server (the `websockets` client), and in-process through
asgiref's ApplicationCommunicator. Both use the real Redis channel layer. "Does not receive"
is asserted by order, never by waiting: the channel layer delivers one consumer's messages in the
order they were sent, so when an event the socket must get arrives first, an earlier event it must
not get was never delivered.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from omnicenter import events
from omnicenter.services import user_set_role
from tests.conftest import ApiChannel, message
from tests.factories import UserFactory, make_channel
from tests.servers import session_key_for
from tickets.consumers import UNAUTHORIZED
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

WAIT = 10  # seconds: how long a socket may take to get a message, not a speed requirement


@pytest.fixture
def b_channel(people) -> ApiChannel:
    channel, generated = make_channel(name="Team B API", default_team=people.team_b)
    return ApiChannel(channel=channel, secret=generated["secret"])


def next_event(ws) -> dict:
    return json.loads(ws.recv(timeout=WAIT))


def ticket_from(api: ApiChannel, external_id: str) -> Ticket:
    return Ticket.objects.get(entries__provider_message_id=external_id, origin_channel=api.channel)


def created(ticket: Ticket) -> dict:
    return {"type": "ticket.created", "ticket": ticket.pk, "version": ticket.version}


def marker(name: str) -> dict:
    return {"type": "marker", "marker": name}


def sync_point(user, name: str) -> None:
    """Put a marker behind everything already sent to `user`'s sockets (their personal group): once
    it arrives, the socket has handled all of that, e.g. re-joined its groups."""
    events.send_now([events.agent_group(user.pk)], {"type": "oc.event", "event": marker(name)})


# --- The real ASGI server, the `websockets` client ---------------------------------------------------


def test_anonymous_connection_is_refused(asgi_server, people):
    with pytest.raises(InvalidStatus) as refused:
        asgi_server.agent_socket()
    assert refused.value.response.status_code == 403


def test_session_cookie_that_is_not_a_session_is_refused(asgi_server, people):
    with pytest.raises(InvalidStatus) as refused:
        asgi_server.agent_socket("not-a-session-at-all-0123456789")
    assert refused.value.response.status_code == 403


def test_signed_in_user_without_a_staff_role_is_refused(asgi_server, people):
    nobody = UserFactory(username="no_role")
    with pytest.raises(InvalidStatus) as refused:
        asgi_server.agent_socket(session_key_for(nobody))
    assert refused.value.response.status_code == 403


def test_foreign_origin_is_rejected_even_with_a_valid_session(asgi_server, people):
    with pytest.raises(InvalidStatus) as refused:
        asgi_server.agent_socket(session_key_for(people.agent_a), origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_agent_receives_own_team_ticket_and_not_other_teams(asgi_server, people, api_channel, b_channel):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        assert asgi_server.post_inbound(b_channel, message("b-1", "For team B")).status_code == 202
        assert asgi_server.post_inbound(api_channel, message("a-1", "For team A")).status_code == 202

        assert next_event(ws) == created(ticket_from(api_channel, "a-1"))


def test_supervisor_receives_both_teams_tickets_once_each(asgi_server, people, api_channel, b_channel):
    # The supervisor is in team A, team B and `supervisors`: three groups, one copy on the socket.
    with asgi_server.agent_socket(session_key_for(people.supervisor)) as ws:
        asgi_server.post_inbound(b_channel, message("b-1", "For team B"))
        asgi_server.post_inbound(api_channel, message("a-1", "For team A"))
        sync_point(people.supervisor, "end")

        assert next_event(ws) == created(ticket_from(b_channel, "b-1"))
        assert next_event(ws) == created(ticket_from(api_channel, "a-1"))
        assert next_event(ws) == marker("end")


def test_socket_idle_for_longer_than_a_channel_layer_poll_stays_open(asgi_server, people, api_channel):
    # The core layer's consumer waits on Redis in polls of 5 s (its `brpop_timeout`); a client-side
    # read timeout shorter than a poll once killed every socket that was quiet that long. The
    # pub/sub layer (the default) waits on one subscription connection: quiet as long.
    quiet = 6
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        time.sleep(quiet)
        asgi_server.post_inbound(api_channel, message("a-1"))

        assert next_event(ws) == created(ticket_from(api_channel, "a-1"))


def test_follow_up_message_is_announced_as_timeline_appended_with_new_version(asgi_server, people, api_channel):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        asgi_server.post_inbound(api_channel, {**message("a-1", "First"), "thread": "t-1"})
        first = next_event(ws)
        asgi_server.post_inbound(api_channel, {**message("a-2", "Second"), "thread": "t-1"})

        ticket = Ticket.objects.get(pk=first["ticket"])
        assert next_event(ws) == {"type": "timeline.appended", "ticket": ticket.pk, "version": ticket.version}
        assert ticket.version == first["version"] + 1
        assert ticket.entries.count() == 2


def test_logout_closes_that_sessions_socket_with_4401_and_no_other(asgi_server, people, api_channel):
    session = session_key_for(people.agent_a)
    other_session = session_key_for(people.agent_a)
    with asgi_server.agent_socket(session) as ws, asgi_server.agent_socket(other_session) as other:
        browser = Client()
        browser.cookies[settings.SESSION_COOKIE_NAME] = session
        assert browser.post("/accounts/logout/").status_code == 302

        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd.code == UNAUTHORIZED
        asgi_server.post_inbound(api_channel, message("a-1"))
        assert next_event(other) == created(ticket_from(api_channel, "a-1"))


def test_a_session_that_expires_closes_its_socket_with_4401(asgi_server, people):
    from importlib import import_module

    session = session_key_for(people.agent_a)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session)
    store.load()
    store.set_expiry(2)
    store.save()
    with asgi_server.agent_socket(session) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT + 5)
        assert closed.value.rcvd.code == UNAUTHORIZED


def test_joining_a_team_starts_its_events_without_reconnecting(asgi_server, people, b_channel):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        people.team_b.members.add(people.agent_a)
        sync_point(people.agent_a, "joined")
        assert next_event(ws) == marker("joined")

        asgi_server.post_inbound(b_channel, message("b-1", "For team B"))

        assert next_event(ws) == created(ticket_from(b_channel, "b-1"))


def test_leaving_a_team_stops_its_events_without_reconnecting(asgi_server, people, api_channel):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        people.team_a.members.remove(people.agent_a)
        sync_point(people.agent_a, "left")
        assert next_event(ws) == marker("left")

        asgi_server.post_inbound(api_channel, message("a-1", "For team A"))
        sync_point(people.agent_a, "after")

        assert next_event(ws) == marker("after")


def test_losing_every_staff_role_closes_the_socket(asgi_server, people):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        people.agent_a.groups.clear()

        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd.code == UNAUTHORIZED


def test_emptying_a_team_stops_its_events_for_former_members(asgi_server, people, api_channel):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        people.team_a.members.clear()
        sync_point(people.agent_a, "cleared")
        assert next_event(ws) == marker("cleared")

        asgi_server.post_inbound(api_channel, message("a-2", "For team A"))
        sync_point(people.agent_a, "after")

        assert next_event(ws) == marker("after")


def test_deactivating_an_account_closes_its_socket(asgi_server, people):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        people.agent_a.is_active = False
        people.agent_a.save(update_fields=["is_active"])

        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd.code == UNAUTHORIZED


def test_supervisor_demoted_to_agent_stops_getting_other_teams_events(asgi_server, people, b_channel):
    boss = UserFactory(username="boss", role="supervisor")
    with asgi_server.agent_socket(session_key_for(boss)) as ws:
        user_set_role(user=boss, role="agent")
        sync_point(boss, "demoted")
        assert next_event(ws) == marker("demoted")

        asgi_server.post_inbound(b_channel, message("b-1", "For team B"))
        sync_point(boss, "after")

        assert next_event(ws) == marker("after")


# --- In-process: the ASGI application driven by asgiref's ApplicationCommunicator -------------------
# (channels.testing.WebsocketCommunicator is this same communicator with shortcuts, but importing
# channels.testing requires daphne, a second ASGI server that Omnicenter does not install.)


class InProcessSocket:
    def __init__(self, session_key: str | None = None, origin: bytes = b"http://127.0.0.1"):
        from omnicenter.asgi import application

        headers = [(b"host", b"127.0.0.1"), (b"origin", origin)]
        if session_key:
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()))
        scope = {
            "type": "websocket", "path": "/ws/agent/", "raw_path": b"/ws/agent/", "query_string": b"",
            "headers": headers, "subprotocols": [], "client": ["127.0.0.1", 50000], "server": ["127.0.0.1", 80],
        }
        self.app = ApplicationCommunicator(application, scope)

    async def connect(self) -> tuple[bool, int | None]:
        await self.app.send_input({"type": "websocket.connect"})
        answer = await self.app.receive_output(WAIT)
        return answer["type"] == "websocket.accept", answer.get("code")

    async def send_json(self, data: dict) -> None:
        await self.app.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive(self) -> dict:
        return await self.app.receive_output(WAIT)

    async def receive_json(self) -> dict:
        frame = await self.receive()
        assert frame["type"] == "websocket.send", frame
        return json.loads(frame["text"])

    async def disconnect(self) -> None:
        await self.app.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.app.wait(WAIT)


@pytest.mark.usefixtures("own_channel_layer")
def test_in_process_anonymous_connection_is_closed_with_4401(people):
    async def scenario():
        ws = InProcessSocket()
        outcome = await ws.connect()
        await ws.disconnect()
        return outcome

    assert async_to_sync(scenario)() == (False, UNAUTHORIZED)


@pytest.mark.usefixtures("own_channel_layer")
def test_in_process_foreign_origin_is_refused(people):
    session = session_key_for(people.agent_a)

    async def scenario():
        ws = InProcessSocket(session, origin=b"https://evil.example")
        connected, _code = await ws.connect()
        await ws.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


@pytest.mark.usefixtures("own_channel_layer")
def test_in_process_agent_gets_team_events_only_and_logout_closes_4401(people, api_channel, b_channel, post_inbound):
    session = session_key_for(people.agent_a)
    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = session

    async def scenario():
        ws = InProcessSocket(session)
        connected, _ = await ws.connect()
        assert connected
        await database_sync_to_async(post_inbound)(b_channel, message("b-1", "For team B"))
        await database_sync_to_async(post_inbound)(api_channel, message("a-1", "For team A"))
        first = await ws.receive_json()
        await database_sync_to_async(browser.post)("/accounts/logout/")
        closed = await ws.receive()
        await ws.disconnect()
        return first, closed

    first, closed = async_to_sync(scenario)()

    assert first == created(ticket_from(api_channel, "a-1"))
    assert (closed["type"], closed["code"]) == ("websocket.close", UNAUTHORIZED)


@pytest.mark.usefixtures("own_channel_layer")
def test_in_process_supervisor_gets_both_teams_and_answers_ping(people, api_channel, b_channel, post_inbound):
    session = session_key_for(people.supervisor)

    async def scenario():
        ws = InProcessSocket(session)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json({"type": "ping"})
        pong = await ws.receive_json()
        await database_sync_to_async(post_inbound)(b_channel, message("b-1", "For team B"))
        await database_sync_to_async(post_inbound)(api_channel, message("a-1", "For team A"))
        received = [await ws.receive_json() for _ in range(2)]
        await ws.disconnect()
        return pong, received

    pong, received = async_to_sync(scenario)()

    assert pong == {"type": "pong"}
    assert received == [created(ticket_from(b_channel, "b-1")), created(ticket_from(api_channel, "a-1"))]


@pytest.mark.usefixtures("own_channel_layer")
def test_in_process_events_are_forwarded_while_the_database_thread_is_busy(people):
    """Forwarding a live event needs no database: it must not wait for asgiref's one shared
    thread (channels' dispatch hops there for every message, so one event to 200 sockets queued
    200 hops behind each other; docs/performance.md). A ping, which touches the database, still
    goes through it."""
    session = session_key_for(people.agent_a)
    release = threading.Event()
    event = {"type": "ticket.created", "ticket": 1, "version": 7}

    async def scenario():
        ws = InProcessSocket(session)
        connected, _ = await ws.connect()
        assert connected
        busy = asyncio.ensure_future(sync_to_async(release.wait)(WAIT))  # holds the shared thread
        try:
            await asyncio.sleep(0.1)
            await get_channel_layer().group_send(events.agent_group(people.agent_a.pk), {"type": "oc.event", "event": event})
            frame = await ws.app.receive_output(3)
            await ws.send_json({"type": "ping"})
            pong_while_busy = await ws.app.receive_nothing(0.5)
        finally:
            release.set()
            await busy
        pong = await ws.receive_json()
        await ws.disconnect()
        return json.loads(frame["text"]), pong_while_busy, pong

    forwarded, pong_while_busy, pong = async_to_sync(scenario)()

    assert forwarded == event
    assert pong_while_busy is True and pong == {"type": "pong"}
