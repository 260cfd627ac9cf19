"""Fixtures for whole flows: a real Celery worker consuming the test Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import setup_logging
from django.conf import settings

from omnicenter import celery_app


def _leave_logging_alone(**kwargs) -> None:
    """A `setup_logging` receiver: with one connected, Celery does not take over the root logger."""


@pytest.fixture
def real_worker(transactional_db) -> Iterator[object]:
    """A Celery worker in a thread of this process (solo pool), fed through the test Redis; the
    tasks this test publishes go to it instead of running eagerly. Stopped at the test's end."""
    conf = celery_app.conf
    assert conf.broker_url == settings.REDIS_URL
    eager = conf.task_always_eager
    conf.task_always_eager = False
    setup_logging.connect(_leave_logging_alone)
    try:
        celery_app.control.purge()  # tasks left over by an interrupted earlier run
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30,
                          loglevel="WARNING") as worker:
            yield worker
    finally:
        setup_logging.disconnect(_leave_logging_alone)
        conf.task_always_eager = eager
