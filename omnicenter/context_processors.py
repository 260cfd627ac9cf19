from __future__ import annotations

from django.conf import settings

from omnicenter import roles


def omnicenter(request) -> dict:
    user = getattr(request, "user", None)
    return {
        "oc_role": roles.role_of(user) if user is not None else None,
        "oc_websocket_url": settings.WEBSOCKET_URL,
        "oc_embedded": settings.EMBEDDED,
    }
