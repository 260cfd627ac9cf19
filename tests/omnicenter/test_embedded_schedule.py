"""The beat schedule that `make run`'s embedded mode runs in a thread of its own process."""

from __future__ import annotations

import threading
import time

import pytest

from omnicenter.management.commands.run_embedded import run_schedule
from omnicenter.models import Heartbeat


@pytest.mark.django_db(transaction=True)  # the schedule's thread has its own connection
def test_the_schedule_thread_runs_the_periodic_tasks(settings, caplog):
    settings.CELERY_BEAT_SCHEDULE = {
        "worker-heartbeat": {"task": "omnicenter.tasks.heartbeat", "schedule": 0.1},
        "sweep-inbound-events": {"task": "channels_inbound.tasks.sweep_inbound_events", "schedule": 0.1},
    }
    stop = threading.Event()
    thread = threading.Thread(target=run_schedule, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not Heartbeat.objects.filter(name="worker").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=10)

    assert Heartbeat.objects.filter(name="worker").exists()
    assert "periodic task" not in caplog.text  # no task failed (was: NotRegistered in the thread)
