"""Celery tasks of the Telegram channel: ids in, one service call (STYLE.md rule 10)."""

from __future__ import annotations

import logging

from celery import shared_task

from channels_inbound.base import TransientSendError

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=30, retry_backoff_max=3600, max_retries=8)
def fetch_media(entry_id: int) -> int:
    from channels_inbound import registry, social

    return social.media_fetch_pending(entry_id=entry_id, fetch=registry.adapter_for("telegram").fetch_media)


@shared_task(acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=30, max_retries=5)
def register_webhook(channel_id: int) -> bool:
    from channels_inbound.base import PermanentSendError, UnknownOutcome
    from channels_inbound.models import Channel
    from channels_inbound.telegram.services import telegram_register_webhook

    channel = Channel.objects.filter(pk=channel_id, kind="telegram", is_active=True).first()
    if channel is None:
        return False
    try:
        telegram_register_webhook(channel=channel)
    except (PermanentSendError, UnknownOutcome) as exc:
        # The admin sees it with the connection test, which registers the webhook again.
        logger.warning("telegram channel %s: webhook not registered: %s", channel.key, exc)
        return False
    return True


@shared_task(acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=5, max_retries=2)
def answer_callback(entry_id: int) -> bool:
    from channels_inbound.telegram.services import telegram_answer_callback

    return telegram_answer_callback(entry_id=entry_id)
