"""Celery tasks of the Meta channels: ids in, one service call (STYLE.md rule 10)."""

from __future__ import annotations

from celery import shared_task

from channels_inbound.base import TransientSendError


@shared_task(acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=30, retry_backoff_max=3600, max_retries=8)
def fetch_media(entry_id: int) -> int:
    from channels_inbound import registry, social
    from tickets.models import TimelineEntry

    kind = TimelineEntry.objects.filter(pk=entry_id).values_list("channel__kind", flat=True).first()
    adapter = registry.adapter_for(kind) if kind else None
    if adapter is None or not hasattr(adapter, "fetch_media"):
        return 0
    return social.media_fetch_pending(entry_id=entry_id, fetch=adapter.fetch_media)


@shared_task(acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=60, max_retries=3)
def fetch_profile(identity_id: int, channel_id: int) -> str:
    from channels_inbound.meta.services import identity_fetch_profile

    return identity_fetch_profile(identity_id=identity_id, channel_id=channel_id)
