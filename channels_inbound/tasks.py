"""Celery tasks: ids in, one service call, nothing else (STYLE.md rule 10)."""

from __future__ import annotations

from celery import shared_task

from channels_inbound import delivery, services


@shared_task(acks_late=True)
def process_inbound_event(event_id: int) -> str:
    # Failures are recorded on the event with a backoff; the sweep retries them.
    return services.inbound_event_process(event_id=event_id)


@shared_task(acks_late=True)
def deliver_message(entry_id: int) -> str | None:
    outcome = delivery.message_deliver(entry_id=entry_id)
    return outcome.status if outcome else None


@shared_task
def sweep_inbound_events() -> int:
    return services.inbound_events_sweep()


@shared_task
def sweep_outbound_messages() -> dict:
    return delivery.outbound_sweep()
