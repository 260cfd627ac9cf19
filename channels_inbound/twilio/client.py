"""The Twilio SDK's REST client, pointed at TWILIO_API_BASE_URL, and media downloads from Twilio.

Credentials go only to the API host. Twilio answers a media URL with a redirect to its CDN; those
hops are followed without credentials, only to TWILIO_MEDIA_HOSTS, and every hop's resolved
address is checked so that a crafted URL cannot reach the internal network.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

MAX_REDIRECTS = 3


class RoutedHttpClient(TwilioHttpClient):
    """Sends the SDK's requests for *.twilio.com to TWILIO_API_BASE_URL when it is not Twilio's own
    (tests point it at a local server that checks what the SDK sends)."""

    def request(self, method, url, *args, **kwargs):
        return super().request(method, _routed(url), *args, **kwargs)


def _routed(url: str) -> str:
    base = urlsplit(settings.TWILIO_API_BASE_URL)
    parts = urlsplit(url)
    if base.netloc.endswith("twilio.com") or not (parts.hostname or "").endswith("twilio.com"):
        return url
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))


def rest_client(*, account_sid: str, auth_token: str) -> Client:
    return Client(account_sid, auth_token, http_client=RoutedHttpClient(timeout=settings.OUTBOUND_HTTP_TIMEOUT))


class MediaRejected(Exception):
    """The medium cannot be fetched for good (wrong host, too large, refused): noted on the timeline."""


@dataclass
class Medium:
    data: bytes
    content_type: str


def _host_allowed(host: str) -> bool:
    return any(fnmatch.fnmatch(host, pattern) or host == pattern.removeprefix("*.") for pattern in settings.TWILIO_MEDIA_HOSTS)


def _check_address(host: str) -> None:
    if settings.TWILIO_MEDIA_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {host}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise MediaRejected(f"{host} resolves to a non-public address")


def _check_peer(response) -> None:
    """The address that actually answered, read from the open socket before any of the body is: a
    name that resolved to a public address for `_check_address` and to a private one a moment later
    (DNS rebinding) is caught here."""
    if settings.TWILIO_MEDIA_ALLOW_PRIVATE:
        return
    connection = getattr(response.raw, "connection", None) or getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        raise MediaRejected("cannot tell which address answered")
    if not ipaddress.ip_address(sock.getpeername()[0]).is_global:
        raise MediaRejected("the media host answered from a non-public address")


def _api_url(url: str) -> bool:
    """Is this the account's API (credentials allowed)? Twilio's own api.twilio.com, or the
    configured stand-in."""
    base = urlsplit(settings.TWILIO_API_BASE_URL)
    parts = urlsplit(url)
    return (parts.scheme, parts.netloc) == (base.scheme, base.netloc) or (
        parts.scheme == "https" and parts.hostname == "api.twilio.com" and base.hostname == "api.twilio.com"
    )


def media_fetch(*, url: str, account_sid: str, auth_token: str, max_bytes: int) -> Medium:
    """Download one medium. Raises MediaRejected (never retried) or requests/Connection errors
    (transient: the task retries)."""
    url = _routed(url)
    if not _api_url(url):
        raise MediaRejected("the media URL is not on Twilio's API host")
    auth: tuple[str, str] | None = (account_sid, auth_token)
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise MediaRejected("unsupported media URL")
        if parts.scheme == "http" and not settings.TWILIO_MEDIA_ALLOW_PRIVATE:
            raise MediaRejected("media URLs must use https")
        _check_address(parts.hostname)
        with requests.get(url, auth=auth, timeout=(5, settings.OUTBOUND_HTTP_TIMEOUT), allow_redirects=False,
                          stream=True) as response:
            _check_peer(response)
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                # Credentials never follow a redirect, and only Twilio's CDN hosts are followed.
                auth = None
                if not _host_allowed(urlsplit(url).hostname or "") and not _api_url(url):
                    raise MediaRejected(f"redirected to a host that is not Twilio's ({urlsplit(url).hostname})")
                continue
            if response.status_code in (408, 429) or response.status_code >= 500:
                raise ConnectionError(f"HTTP {response.status_code}")
            if response.status_code >= 300:
                raise MediaRejected(f"HTTP {response.status_code}")
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise MediaRejected(f"larger than {max_bytes} bytes")
            chunks, size = [], 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaRejected(f"larger than {max_bytes} bytes")
                chunks.append(chunk)
            return Medium(data=b"".join(chunks), content_type=response.headers.get("Content-Type", ""))
    raise MediaRejected(f"more than {MAX_REDIRECTS} redirects")
