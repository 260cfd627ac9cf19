from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from omnicenter import roles

ROLE_LABELS = {roles.AGENT: _("Agent"), roles.SUPERVISOR: _("Supervisor"), roles.ADMIN: _("Admin")}


def omnicenter(request) -> dict:
    user = getattr(request, "user", None)
    role = roles.role_of(user) if user is not None else None
    return {
        "oc_role": ROLE_LABELS.get(role) if role else None,
        "oc_role_code": role,
        "oc_is_supervisor": role in (roles.SUPERVISOR, roles.ADMIN),
        "oc_websocket_url": settings.WEBSOCKET_URL,
        "oc_embedded": settings.EMBEDDED,
    }
