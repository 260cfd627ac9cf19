"""The whole spine on the production path: an integrator's HTTP POST to the real ASGI server, the
event stored, a real Celery worker (through Redis) putting it on a timeline, and the agent's
websocket hearing about it."""

from __future__ import annotations

import json

import pytest
from celery.signals import task_prerun
from django.conf import settings

from channels_inbound.models import InboundEvent
from tests.conftest import message
from tests.servers import session_key_for
from tickets.models import Ticket, TimelineEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

WAIT = 30  # seconds a worker may take to pick up a task; a bound on waiting, not a speed requirement


@pytest.fixture
def tasks_run():
    """The tasks that start running: name, arguments, and the queue they were delivered from (None
    when run eagerly, without a broker)."""
    started: list[tuple] = []

    def record(sender, task_id, task, args, **kwargs) -> None:
        queue = None if task.request.is_eager else (task.request.delivery_info or {}).get("routing_key")
        started.append((task.name, tuple(args), queue))

    task_prerun.connect(record)
    yield started
    task_prerun.disconnect(record)


def test_posted_message_is_processed_by_a_worker_and_announced_live_to_the_team(
    asgi_server, real_worker, people, api_channel, tasks_run
):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        first = asgi_server.post_inbound(api_channel, {**message("m-1", "Where is my parcel?"), "thread": "order-7"})
        created = json.loads(ws.recv(timeout=WAIT))
        second = asgi_server.post_inbound(api_channel, {**message("m-2", "It is late."), "thread": "order-7"})
        appended = json.loads(ws.recv(timeout=WAIT))

    assert (first.status_code, second.status_code) == (202, 202)
    ticket = Ticket.objects.get()
    assert created == {"type": "ticket.created", "ticket": ticket.pk, "version": 1}
    assert appended == {"type": "timeline.appended", "ticket": ticket.pk, "version": ticket.version}
    assert ticket.version == 2
    assert ticket.team == people.team_a
    assert ticket.customer == people.customer
    events = [InboundEvent.objects.get(pk=r.json()["event_id"]) for r in (first, second)]
    assert [e.status for e in events] == [InboundEvent.Status.PROCESSED] * 2
    assert list(ticket.entries.values_list("inbound_event", "text")) == [
        (events[0].pk, "Where is my parcel?"), (events[1].pk, "It is late."),
    ]
    # Each message found no drain on its way (the first was done before the second came), so each kicked one.
    task, queue = "channels_inbound.tasks.process_inbound_events", settings.CELERY_TASK_DEFAULT_QUEUE
    assert tasks_run == [(task, (), queue), (task, (), queue)]


def test_duplicate_delivery_publishes_no_second_task(asgi_server, real_worker, people, api_channel, tasks_run):
    with asgi_server.agent_socket(session_key_for(people.agent_a)) as ws:
        first = asgi_server.post_inbound(api_channel, message("m-1"))
        json.loads(ws.recv(timeout=WAIT))
        again = asgi_server.post_inbound(api_channel, message("m-1"))
        # A later message, processed after anything the duplicate might have enqueued.
        asgi_server.post_inbound(api_channel, message("m-2", "And another thing."))
        json.loads(ws.recv(timeout=WAIT))

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    # One drain for m-1 and one for m-2; the duplicate stored nothing and kicked nothing.
    assert [name for name, _args, _queue in tasks_run] == ["channels_inbound.tasks.process_inbound_events"] * 2
    assert TimelineEntry.objects.count() == 2
