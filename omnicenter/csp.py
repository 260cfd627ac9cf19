"""The Content-Security-Policy of our own pages: nothing inline, nothing from elsewhere.

Customer HTML shown on the timeline is sanitized, and remote images are blocked unless the agent
asks for them (tickets/email_display.py); this policy is the second line of defence.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.csp import CSP


def policy(*, remote_images: bool = False) -> dict:
    connect = [CSP.SELF]
    if settings.WEBSOCKET_URL:
        parts = urlsplit(settings.WEBSOCKET_URL)
        connect.append(f"{parts.scheme}://{parts.netloc}")
    return {
        "default-src": [CSP.SELF],
        "script-src": [CSP.SELF],
        "style-src": [CSP.SELF],
        "img-src": [CSP.SELF, "data:", *(["https:", "http:"] if remote_images else [])],
        "connect-src": [*connect, *settings.TWILIO_CSP_CONNECT],
        "media-src": [CSP.SELF, *settings.TWILIO_CSP_MEDIA],
        "object-src": [CSP.NONE],
        "base-uri": [CSP.NONE],
        "form-action": [CSP.SELF],
        "frame-ancestors": [CSP.NONE],
    }


def strict(view):
    """Send the strict policy with the view's response (images from elsewhere only when the
    request asks for one message's images: `?images=<entry id>`)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if not hasattr(response, "_csp_config"):
            response._csp_config = policy(remote_images=bool(request.GET.get("images")))
        return response

    return wrapped
