"""Collision detection and personal notices over /ws/agent/ (the real ASGI server and Redis).

"Does not receive" is asserted by order, as in test_agent_socket.py: a later message the socket
must get arrives first, so an earlier one it must not get was never delivered.
"""

from __future__ import annotations

import json

import pytest

from omnicenter import events
from tests.factories import TicketFactory
from tests.servers import session_key_for
from tickets import services
from tickets.models import AgentPresence

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

WAIT = 10


def recv(ws) -> dict:
    return json.loads(ws.recv(timeout=WAIT))


def recv_until(ws, type_: str) -> dict:
    while True:
        message = recv(ws)
        if message.get("type") == type_:
            return message


def marker_to(user, name: str) -> None:
    events.send_now([events.agent_group(user.pk)], {"type": "oc.event", "event": {"type": "marker", "marker": name}})


@pytest.fixture
def ticket(people):
    return TicketFactory(subject="Shared", customer=people.customer, team=people.team_a, status="open")


def test_viewing_and_typing_reach_the_other_agent_on_the_ticket(asgi_server, people, ticket):
    people.agent_a.first_name, people.agent_a.last_name = "Anna", "Agent"
    people.agent_a.save()
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as a, \
            asgi_server.agent_socket(session_key_for(people.supervisor)) as b:
        b.send(json.dumps({"type": "watch", "ticket": ticket.pk}))
        b.send(json.dumps({"type": "hello"}))
        recv_until(b, "presence")  # b's watch is handled: b is in the ticket's group
        a.send(json.dumps({"type": "watch", "ticket": ticket.pk}))
        seen = recv_until(b, "collision")
        a.send(json.dumps({"type": "typing", "ticket": ticket.pk}))
        typing = recv_until(b, "collision")
        a.send(json.dumps({"type": "unwatch"}))
        left = recv_until(b, "collision")

    assert seen == {"type": "collision", "ticket": ticket.pk, "user": people.agent_a.pk, "name": "Anna Agent", "state": "viewing"}
    assert typing["state"] == "typing" and left["state"] == "left"


def test_an_agent_cannot_watch_another_teams_ticket(asgi_server, people, ticket):
    with asgi_server.agent_socket(session_key_for(people.agent_b)) as outsider, \
            asgi_server.agent_socket(session_key_for(people.agent_a)) as a:
        outsider.send(json.dumps({"type": "watch", "ticket": ticket.pk}))
        outsider.send(json.dumps({"type": "hello"}))
        assert recv(outsider)["type"] == "presence"  # the watch was handled before it
        a.send(json.dumps({"type": "watch", "ticket": ticket.pk}))
        a.send(json.dumps({"type": "typing", "ticket": ticket.pk}))
        outsider.send(json.dumps({"type": "typing", "ticket": ticket.pk}))
        marker_to(people.agent_b, "end")
        marker_to(people.agent_a, "end")

        # The outsider hears nothing of the ticket, and says nothing to its watchers.
        assert recv(outsider) == {"type": "marker", "marker": "end"}
        assert recv(a) == {"type": "marker", "marker": "end"}


def test_a_mention_and_an_assignment_notify_only_that_agent(asgi_server, people, ticket):
    with asgi_server.agent_socket(session_key_for(people.supervisor)) as sup, \
            asgi_server.agent_socket(session_key_for(people.agent_b)) as b:
        services.ticket_add_note(ticket=ticket, by=people.agent_a, text="@supervisor please look, @agent_b too")
        services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.supervisor)
        marker_to(people.agent_b, "end")

        assert recv_until(sup, "mention")["ticket"] == ticket.pk
        assert recv(b) == {"type": "marker", "marker": "end"}  # agent_b is not in team A


def test_connecting_marks_the_agent_online_and_hello_tells_the_status(asgi_server, people):
    services.presence_set(user=people.agent_a, status="away", manual=True)
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as a:
        a.send(json.dumps({"type": "hello"}))
        assert recv(a) == {"type": "presence", "status": "away"}  # set by hand: kept
    with asgi_server.agent_socket(session_key_for(people.agent_b)) as b:
        b.send(json.dumps({"type": "hello"}))
        assert recv(b) == {"type": "presence", "status": "online"}
        b.send(json.dumps({"type": "ping"}))
        assert recv(b) == {"type": "pong"}
    assert AgentPresence.objects.get(user=people.agent_b).last_seen_at is not None


def test_a_connection_storm_of_agent_sockets_all_connect(asgi_server, people):
    """60 sockets at once (the channel layer's pool is sized in settings: the default 100
    connections failed handshakes in a 200-connect storm; bench/inbox.py measures 200)."""
    from concurrent.futures import ThreadPoolExecutor

    session = session_key_for(people.agent_a)

    def open_one(_):
        ws = asgi_server.agent_socket(session).__enter__()
        ws.send(json.dumps({"type": "hello"}))
        recv(ws)
        return ws

    with ThreadPoolExecutor(max_workers=60) as pool:
        sockets = list(pool.map(open_one, range(60)))
    try:
        events.send_now([events.agent_group(people.agent_a.pk)], {"type": "oc.event", "event": {"type": "marker", "marker": "all"}})
        assert all(recv(ws) == {"type": "marker", "marker": "all"} for ws in sockets)
    finally:
        for ws in sockets:
            ws.__exit__(None, None, None)


def test_malformed_watch_and_typing_floods_are_ignored(asgi_server, people, ticket):
    with asgi_server.agent_socket(session_key_for(people.supervisor)) as b, \
            asgi_server.agent_socket(session_key_for(people.agent_a)) as a:
        for junk in ({"type": "watch", "ticket": 2**70}, {"type": "watch", "ticket": "1"}, {"type": "watch"},
                     {"type": "typing", "ticket": ticket.pk}, ["not", "a", "dict"]):
            a.send(json.dumps(junk))
        b.send(json.dumps({"type": "watch", "ticket": ticket.pk}))
        b.send(json.dumps({"type": "hello"}))
        recv_until(b, "presence")
        a.send(json.dumps({"type": "watch", "ticket": ticket.pk}))
        for _ in range(20):
            a.send(json.dumps({"type": "typing", "ticket": ticket.pk}))
        a.send(json.dumps({"type": "hello"}))
        recv_until(a, "presence")  # a's consumer handled everything before, in order
        marker_to(people.supervisor, "end")

        received = []
        while (message := recv(b)) != {"type": "marker", "marker": "end"}:
            received.append(message["state"])
        # The socket survived the junk; twenty typing hints in a burst become one.
        assert received == ["viewing", "typing"]
