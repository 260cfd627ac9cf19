from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channels_inbound.models import Channel

_cache: dict[str, tuple[float, Channel | None]] = {}
_cache_lock = threading.Lock()


def channel_for_webhook(key: str, *, kinds: tuple[str, ...]) -> Channel | None:
    """The active channel a provider is calling, or None (answered 404).

    Every webhook request needs it, so each process keeps it for CHANNEL_CACHE_SECONDS (a
    statement and a decryption less per request; docs/performance.md). Saving a channel clears
    the cache of the process that saved it; other processes see the change within those seconds.
    Callers get their own copy, so nothing they change leaks into the next request.
    """
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is None or hit[0] <= now:
        channel = Channel.objects.select_related("default_team").filter(key=key, is_active=True).first()
        if channel is not None:
            channel.secrets  # noqa: B018  (decrypted once here, kept with the cached copy)
        hit = (now + settings.CHANNEL_CACHE_SECONDS, channel)
        with _cache_lock:
            if len(_cache) > 10_000:  # unknown keys are cached too (None); never let guesses grow it unbounded
                _cache.clear()
            _cache[key] = hit
    channel = hit[1]
    if channel is None or channel.kind not in kinds:
        return None
    mine = copy.copy(channel)
    mine.settings = copy.deepcopy(channel.settings)
    return mine


def channel_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


@receiver(post_save, sender=Channel)
@receiver(post_delete, sender=Channel)
def _channel_changed(sender, **kwargs) -> None:
    channel_cache_clear()
