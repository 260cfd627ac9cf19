"""Celery tasks: ids in, one service call, nothing else (STYLE.md rule 10)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from channels_inbound import delivery, services


@shared_task(acks_late=True)
def process_inbound_event(event_id: int) -> str:
    # Failures are recorded on the event with a backoff; the sweep retries them.
    return services.inbound_event_process(event_id=event_id)


@shared_task(acks_late=True)
def deliver_message(entry_id: int) -> str | None:
    outcome = delivery.message_deliver(entry_id=entry_id)
    return outcome.status if outcome else None


def _again_soon(task) -> None:
    # A full batch means more may be waiting: go on now instead of at the next beat tick.
    # (Eager mode has no queue to go back to; the next tick continues.)
    if not task.app.conf.task_always_eager:
        task.apply_async(countdown=1)


@shared_task
def sweep_inbound_events() -> int:
    count = services.inbound_events_sweep()
    if count >= settings.INBOUND_SWEEP_BATCH:
        _again_soon(sweep_inbound_events)
    return count


@shared_task
def sweep_outbound_messages() -> dict:
    result = delivery.outbound_sweep(batch=settings.OUTBOUND_SWEEP_BATCH)
    if max(result.values()) >= settings.OUTBOUND_SWEEP_BATCH:
        _again_soon(sweep_outbound_messages)
    return result
