from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from omnicenter.models import Heartbeat


@shared_task
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: its timestamp proves both are alive (see /healthz)."""
    Heartbeat.objects.update_or_create(name="worker", defaults={"at": timezone.now()})
