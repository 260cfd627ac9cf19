"""Telegram Bot API calls. The bot token is part of every Bot API URL, so URLs are built here and
nowhere else, and no error text carries them (provider_http raises without the URL)."""

from __future__ import annotations

from django.conf import settings

from channels_inbound.base import PermanentSendError, TransientSendError
from channels_inbound.provider_http import Downloaded, call, download


def _method_url(token: str, method: str) -> str:
    return f"{settings.TELEGRAM_API_URL}/bot{token}/{method}"


def request(token: str, method: str, *, json: dict | None = None, data: dict | None = None, files: dict | None = None) -> dict:
    """Call a Bot API method; returns `result`. 429 and 5xx are transient, other refusals permanent."""
    response = call("POST", _method_url(token, method), what="the Telegram Bot API", json=json, data=data, files=files)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code < 300 and body.get("ok"):
        return body.get("result") if body.get("result") is not None else {}
    description = str(body.get("description") or "")[:300].replace(token, "…") if token else ""
    detail = f"Telegram {method}: HTTP {response.status_code}" + (f": {description}" if description else "")
    if response.status_code in (408, 429) or response.status_code >= 500:
        retry_after = (body.get("parameters") or {}).get("retry_after")
        raise TransientSendError(detail + (f" (retry after {retry_after} s)" if retry_after else ""))
    raise PermanentSendError(detail)


def file_download(token: str, file_id: str, *, max_bytes: int | None = None) -> Downloaded:
    """getFile, then the file itself (bots may download files up to 20 MB)."""
    result = request(token, "getFile", json={"file_id": file_id})
    path = result.get("file_path", "")
    if not path:
        raise PermanentSendError("Telegram getFile gave no file path")
    return download(f"{settings.TELEGRAM_API_URL}/file/bot{token}/{path}", what="the Telegram file", max_bytes=max_bytes)
