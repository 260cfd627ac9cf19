"""HTTP calls to messaging providers (Graph API, Telegram Bot API) with their outcomes mapped to
the delivery state machine, and bounded media downloads.

Exception texts never carry the URL: the Telegram bot token is part of every Bot API URL, and
exception texts end up on timelines and in logs. Exceptions are raised `from None` for the same
reason (a chained requests exception would print the URL in a traceback).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import requests
from django.conf import settings

from channels_inbound.base import TransientSendError, UnknownOutcome

CONNECT_TIMEOUT = 5
CHUNK = 64 * 1024
_CREDENTIALS_IN_URL = re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+|(access_token=)[^&\s\"]+")


class RedactCredentials(logging.Filter):
    """urllib3 logs every request line at DEBUG: the Telegram bot token (in the path) and the
    Graph API access token (in the query) are redacted before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message or "access_token=" in message:
            record.msg = _CREDENTIALS_IN_URL.sub(lambda m: (m.group(1) or m.group(2)) + "<redacted>", message)
            record.args = ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(RedactCredentials())


class MediaUnavailable(Exception):
    """The file cannot be fetched, now or later (gone, refused, too large): recorded, not retried."""


@dataclass
class Downloaded:
    data: bytes
    content_type: str


def call(method: str, url: str, *, what: str, **kwargs) -> requests.Response:
    """One request to a provider. Raises TransientSendError when it surely did not arrive and
    UnknownOutcome when it may have (read timeout); returns every answer, whatever its status."""
    try:
        return requests.request(
            method, url, timeout=(CONNECT_TIMEOUT, settings.OUTBOUND_HTTP_TIMEOUT), allow_redirects=False, **kwargs
        )
    except requests.ConnectionError as exc:
        if isinstance(exc, requests.ConnectTimeout) or not isinstance(exc, requests.Timeout):
            raise TransientSendError(f"cannot connect to {what}: {exc.__class__.__name__}") from None
        raise UnknownOutcome(f"timed out waiting for {what}") from None
    except requests.Timeout:
        raise UnknownOutcome(f"timed out waiting for {what}") from None
    except requests.RequestException as exc:
        raise TransientSendError(f"request to {what} failed: {exc.__class__.__name__}") from None


def download(url: str, *, what: str, max_bytes: int | None = None) -> Downloaded:
    """GET a file, refusing more than `max_bytes` (ATTACHMENT_MAX_BYTES) without reading it all.

    TransientSendError: try again later (connection, 5xx, 429, timeout). MediaUnavailable: never.
    """
    limit = max_bytes if max_bytes is not None else settings.ATTACHMENT_MAX_BYTES
    if not url.lower().startswith(("https://", "http://")):
        raise MediaUnavailable(f"{what}: not an http(s) URL")
    try:
        with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, settings.OUTBOUND_HTTP_TIMEOUT)) as response:
            if response.status_code in (408, 429) or response.status_code >= 500:
                raise TransientSendError(f"{what}: HTTP {response.status_code}")
            if response.status_code >= 300:
                raise MediaUnavailable(f"{what}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise MediaUnavailable(f"{what}: {declared} bytes, above the limit of {limit}")
            parts, size = [], 0
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise MediaUnavailable(f"{what}: above the limit of {limit} bytes")
                parts.append(chunk)
            return Downloaded(data=b"".join(parts), content_type=response.headers.get("Content-Type", ""))
    except requests.RequestException as exc:
        raise TransientSendError(f"{what}: {exc.__class__.__name__}") from None
