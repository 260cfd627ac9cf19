"""Visitor tokens: signed, expiring, tied to one channel. Kept in the widget's local storage and sent
as the first websocket frame (or in a request body), never in a URL."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "omnicenter.webchat.visitor"
FILE_SALT = "omnicenter.webchat.file"
FILE_MAX_AGE = 7 * 86400


@dataclass(frozen=True)
class Visitor:
    channel_key: str
    #: `anon:<random>` or `user:<the site's user id>`; the value of the visitor identity
    id: str

    @property
    def verified_user(self) -> bool:
        return self.id.startswith("user:")


def new_anonymous_id() -> str:
    return "anon:" + secrets.token_hex(16)


def issue(visitor: Visitor) -> str:
    return signing.dumps({"c": visitor.channel_key, "v": visitor.id}, salt=SALT)


def read(token: object, *, channel_key: str) -> Visitor | None:
    """The visitor a token stands for, or None when it is not ours, expired or for another channel."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        return None
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.WEBCHAT_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(data, dict) or data.get("c") != channel_key or not isinstance(data.get("v"), str):
        return None
    return Visitor(channel_key=channel_key, id=data["v"])


def identity_hash(secret: str, user_id: str) -> str:
    """What the site's backend computes for a signed-in user: hex HMAC-SHA256 of the user id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_hash_valid(secret: str, user_id: str, given: str) -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(identity_hash(secret, user_id).encode(), given.strip().lower().encode())


def file_token(attachment_public_id: str) -> str:
    return signing.dumps(attachment_public_id, salt=FILE_SALT, compress=False)


def file_token_read(token: str) -> str | None:
    try:
        return signing.loads(token, salt=FILE_SALT, max_age=FILE_MAX_AGE)
    except signing.BadSignature:
        return None
