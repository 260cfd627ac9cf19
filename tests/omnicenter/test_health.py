"""`GET /healthz`: the database, Redis, the workers' heartbeat and the inbound backlog."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from channels_inbound.models import InboundEvent
from channels_inbound.services import inbound_event_store
from omnicenter.models import Heartbeat
from omnicenter.tasks import heartbeat
from tests.factories import make_channel
from tests.ports import free_port


def store_events(channel, statuses: list[str]) -> list[InboundEvent]:
    """Events stored through the real ingest service, then moved to the given states."""
    events = []
    for index, status in enumerate(statuses):
        event, _ = inbound_event_store(channel=channel, external_id=f"e-{index}", payload={"id": f"e-{index}"})
        InboundEvent.objects.filter(pk=event.pk).update(status=status)
        events.append(event)
    return events


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/healthz", "/healthz/"])
def test_healthy_installation_answers_200_with_every_component_ok(client, url):
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {
        "mode": "production",
        "database": "ok",
        "redis": "ok",
        "workers": {"state": "in_process"},
        "inbound": {"waiting": 0, "oldest_age_seconds": None, "dead": 0},
    }


@pytest.mark.django_db
def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_fresh_worker_heartbeat_reports_workers_ok(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    heartbeat()  # what beat schedules and a worker runs

    workers = client.get("/healthz").json()["workers"]

    assert workers["state"] == "ok"
    assert 0 <= workers["last_heartbeat_age_seconds"] < 60


@pytest.mark.django_db
def test_old_worker_heartbeat_reports_workers_stale(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    heartbeat()
    Heartbeat.objects.filter(name="worker").update(at=timezone.now() - timedelta(minutes=10))

    response = client.get("/healthz")

    assert response.status_code == 200  # stale workers are reported, the web process still answers
    workers = response.json()["workers"]
    assert workers["state"] == "stale"
    assert 600 <= workers["last_heartbeat_age_seconds"] < 660


@pytest.mark.django_db
def test_without_any_heartbeat_workers_are_unknown(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    workers = client.get("/healthz").json()["workers"]

    assert workers == {"state": "unknown", "last_heartbeat_age_seconds": None}


@pytest.mark.django_db
def test_heartbeat_task_keeps_one_row_and_moves_it_forward():
    heartbeat()
    Heartbeat.objects.filter(name="worker").update(at=timezone.now() - timedelta(hours=1))
    heartbeat()

    beat = Heartbeat.objects.get()
    assert beat.name == "worker"
    assert timezone.now() - beat.at < timedelta(minutes=1)


@pytest.mark.django_db
def test_backlog_counts_unfinished_events_and_the_age_of_the_oldest(client):
    channel, _ = make_channel(name="Backlog")
    events = store_events(channel, ["received", "processing", "failed", "processed", "dead", "dead"])
    InboundEvent.objects.filter(pk=events[2].pk).update(received_at=timezone.now() - timedelta(seconds=300))
    # A processed or dead event is older still, and must not count as the oldest waiting one.
    InboundEvent.objects.filter(pk__in=[events[3].pk, events[4].pk]).update(
        received_at=timezone.now() - timedelta(days=1)
    )

    inbound = client.get("/healthz").json()["inbound"]

    assert inbound["waiting"] == 3
    assert inbound["dead"] == 2
    assert 300 <= inbound["oldest_age_seconds"] < 360


@pytest.mark.django_db
def test_unreachable_redis_is_reported_down_but_the_answer_stays_200(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["redis"] == "down"
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_embedded_mode_without_redis_reports_not_configured(client, settings):
    settings.REDIS_URL = ""

    assert client.get("/healthz").json()["redis"] == "not_configured"


@pytest.mark.django_db(transaction=True)
def test_unreachable_database_answers_503_with_database_down(client):
    # Point the real connection at a port where no PostgreSQL listens; the next query must connect.
    connection.close()
    original_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = free_port()
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port

    assert response.status_code == 503
    assert response.json() == {"mode": "production", "database": "down", "redis": "ok"}
    assert client.get("/healthz").status_code == 200  # and it recovers once the database is back
