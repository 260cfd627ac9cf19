from __future__ import annotations

from channels_inbound.models import Channel


def channel_for_webhook(key: str, *, kinds: tuple[str, ...]) -> Channel | None:
    """The active channel a provider is calling, or None (answered 404)."""
    return Channel.objects.filter(key=key, kind__in=kinds, is_active=True).first()
