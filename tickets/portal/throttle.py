"""Per-address and per-IP limits on sign-in requests and code guesses (Django cache: Redis in
production). Counting happens whether or not the address is known, so a limit reveals nothing."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from omnicenter.views import _client_ip


def _key(scope: str, value: str) -> str:
    return f"portal-{scope}:" + hashlib.sha256(value.encode()).hexdigest()[:40]


def hit(request, *, address: str = "", ip_only: bool = False) -> bool:
    """Count one request; True when it is over a limit (and must be refused)."""
    limits = [(_key("ip", _client_ip(request)), settings.PORTAL_SIGNIN_PER_IP)]
    if address and not ip_only:
        limits.append((_key("addr", address), settings.PORTAL_SIGNIN_PER_ADDRESS))
    over = False
    for key, limit in limits:
        if cache.add(key, 1, settings.PORTAL_SIGNIN_WINDOW):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, settings.PORTAL_SIGNIN_WINDOW)
                count = 1
        over = over or count > limit
    return over
