"""Celery tasks: ids in, one service call, nothing else (STYLE.md rule 10)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from channels_inbound import delivery, services
from channels_inbound.base import TransientSendError


@shared_task(acks_late=True)
def process_inbound_event(event_id: int) -> str:
    # Failures are recorded on the event with a backoff; the sweep retries them.
    return services.inbound_event_process(event_id=event_id)


@shared_task(acks_late=True)
def process_inbound_events() -> int:
    # Published by services.inbound_kick, at most one per burst: drains every waiting event.
    return services.inbound_events_drain()


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


@shared_task
def poll_mailboxes() -> int:
    """Periodic: one poll task per active email channel that has an IMAP mailbox."""
    from channels_inbound.models import Channel

    channel_ids = [
        c.pk for c in Channel.objects.filter(kind="email", is_active=True).only("pk", "settings")
        if (c.settings or {}).get("imap_host")
    ]
    for channel_id in channel_ids:
        poll_mailbox.delay(channel_id)
    return len(channel_ids)


@shared_task(acks_late=True)
def poll_mailbox(channel_id: int) -> dict | None:
    # One poll per mailbox at a time is the lease's job (imap.mailbox_poll), not the queue's.
    from dataclasses import asdict

    from channels_inbound.email.imap import mailbox_poll
    from channels_inbound.models import Channel

    channel = Channel.objects.filter(pk=channel_id, kind="email", is_active=True).first()
    if channel is None:
        return None
    return asdict(mailbox_poll(channel=channel))


# --- web chat email (channels_inbound/webchat/mailing.py) -----------------------------------------

@shared_task(bind=True, acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=30, max_retries=4)
def send_webchat_email(self, event_id: int) -> str:
    from channels_inbound.webchat import mailing

    return mailing.event_email_send(event_id=event_id, final_attempt=self.request.retries >= self.max_retries)


@shared_task(bind=True, autoretry_for=(TransientSendError,), retry_backoff=5, max_retries=3)
def send_webchat_email_code(self, code_id: int) -> str:
    from channels_inbound.webchat import mailing

    return mailing.email_code_send(code_id=code_id, final_attempt=self.request.retries >= self.max_retries)


@shared_task(acks_late=True)
def email_offline_replies(entry_id: int) -> str:
    from channels_inbound.webchat import mailing

    return "queued" if mailing.offline_replies_collect(entry_id=entry_id) else "skipped"


@shared_task
def purge_webchat_email_codes() -> int:
    from channels_inbound.webchat import mailing

    count = mailing.email_codes_purge()
    if count >= mailing.PURGE_BATCH:
        _again_soon(purge_webchat_email_codes)
    return count
