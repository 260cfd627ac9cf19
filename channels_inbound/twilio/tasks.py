"""Celery tasks of the Twilio channels: ids in, one service call (STYLE.md rule 10)."""

from __future__ import annotations

import requests
from celery import shared_task


@shared_task(acks_late=True, autoretry_for=(ConnectionError, requests.RequestException), retry_backoff=30,
             retry_backoff_max=3600, max_retries=8)
def fetch_media(entry_id: int) -> dict:
    """Download an inbound message's MMS/WhatsApp media or a call's recording into attachments."""
    from channels_inbound.twilio import messaging

    return messaging.media_download(entry_id=entry_id)
