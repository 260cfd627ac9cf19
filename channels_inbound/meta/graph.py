"""Meta's Graph API: the Send API and user profiles, with Graph errors mapped to delivery outcomes.

The base URL (with its version) is `settings.META_GRAPH_URL`. The page access token travels as the
`access_token` query parameter, as Meta's documentation shows; it never appears in our errors.
"""

from __future__ import annotations

import json

from django.conf import settings

from channels_inbound.base import PermanentSendError, TransientSendError
from channels_inbound.provider_http import call

# Graph error codes that mean "try again later" (throttling, temporary outages).
TRANSIENT_CODES = {1, 2, 4, 17, 32, 341, 613}
OUTSIDE_WINDOW = (10, 2018278)  # (code, error_subcode): "sent outside of allowed window"


class OutsideWindow(PermanentSendError):
    pass


def url(path: str) -> str:
    return f"{settings.META_GRAPH_URL}/{path.lstrip('/')}"


def _error(response) -> tuple[dict, str]:
    try:
        error = (response.json() or {}).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    message = str(error.get("message") or "")[:300]
    return error, message


def raise_for_graph(response, *, what: str) -> dict:
    """Return the JSON body of a successful answer, or raise the matching send error."""
    if response.status_code < 300:
        try:
            body = response.json()
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}
    error, message = _error(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    detail = f"{what}: HTTP {response.status_code}" + (f" (code {code}" + (f"/{subcode}" if subcode else "") + f"): {message}" if code else "")
    if (code, subcode) == OUTSIDE_WINDOW:
        raise OutsideWindow(
            "Meta refused the message: the customer's 24-hour window is closed. " + (f"({message})" if message else "")
        )
    if response.status_code in (408, 429) or response.status_code >= 500 or error.get("is_transient") or code in TRANSIENT_CODES:
        raise TransientSendError(detail)
    raise PermanentSendError(detail)


def send(*, token: str, body: dict, files: dict | None = None) -> dict:
    """POST /me/messages. With `files`, the message goes as multipart (an attachment upload)."""
    if files:
        form = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in body.items()}
        response = call("POST", url("me/messages"), what="the Graph API", params={"access_token": token}, data=form, files=files)
    else:
        response = call("POST", url("me/messages"), what="the Graph API", params={"access_token": token}, json=body)
    return raise_for_graph(response, what="Send API")


def profile(*, token: str, user_id: str, fields: str) -> dict:
    response = call("GET", url(user_id), what="the Graph API", params={"fields": fields, "access_token": token})
    return raise_for_graph(response, what="profile")
