from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from omnicenter.errors import DomainError


def exception_handler(exc, context):
    """DRF's handler, plus every service-level DomainError as its status with a readable message."""
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    return drf_exception_handler(exc, context)
