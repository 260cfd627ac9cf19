"""Writes owned by the omnicenter app: users, roles and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from omnicenter.models import ApiToken, User
from omnicenter.roles import ROLES

TOKEN_PREFIX = "oc_"  # noqa: S105 (a public prefix, not a secret)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user: User, name: str, read_only: bool = False) -> tuple[ApiToken, str]:
    """Create a token and return it with its clear key, which is never stored and shown only now."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, read_only=read_only, prefix=key[: len(TOKEN_PREFIX) + 6], key_hash=hash_token(key)
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def roles_ensure() -> dict[str, Group]:
    return {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}


@transaction.atomic
def user_set_role(*, user: User, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    groups = roles_ensure()
    user.groups.remove(*groups.values())
    user.groups.add(groups[role])
    user.is_staff = role == "admin"  # the Django admin is for admins only
    user.save(update_fields=["is_staff"])
    user.__dict__.pop("_oc_groups", None)


def user_set_language(*, user: User, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])
