"""What every JSON webhook view does the same way: its error answers, the size limit, the body."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils.translation import gettext as _


def error(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def _too_large() -> JsonResponse:
    return error(413, _("The payload is larger than %(limit)s bytes.") % {"limit": settings.INBOUND_MAX_BYTES})


def refuse_if_too_large(request) -> JsonResponse | None:
    """413 before anything is read when the declared length is over INBOUND_MAX_BYTES."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return _too_large() if length > settings.INBOUND_MAX_BYTES else None


def json_body(request) -> tuple[object, JsonResponse | None]:
    """The parsed JSON body, or the 400/413 answer to give instead."""
    try:
        return json.loads(request.body), None
    except RequestDataTooBig:
        return None, _too_large()
    except (ValueError, UnicodeDecodeError):
        return None, error(400, _("The body is not valid JSON."))
