"""Writes owned by the omnicenter app: users, roles and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omnicenter.errors import DomainError
from omnicenter.models import ApiToken, User
from omnicenter.roles import ROLES

TOKEN_PREFIX = "oc_"  # noqa: S105 (a public prefix, not a secret)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class InvalidTokenScopes(DomainError):
    code = "invalid_scopes"


def check_token_scopes(scopes) -> list[str]:
    """The scopes in their canonical order, or InvalidTokenScopes naming what is wrong and what exists."""
    known = ", ".join(ApiToken.Scope.values)
    if isinstance(scopes, str) or not all(isinstance(scope, str) for scope in scopes):
        raise InvalidTokenScopes(_("Scopes must be a list of names: %(known)s.") % {"known": known})
    unknown = sorted(set(scopes) - set(ApiToken.Scope.values))
    if unknown:
        raise InvalidTokenScopes(_("Unknown scope: %(unknown)s. Choose from: %(known)s.")
                                 % {"unknown": ", ".join(unknown), "known": known})
    if not scopes:
        raise InvalidTokenScopes(_("Choose at least one scope: %(known)s.") % {"known": known})
    return [scope for scope in ApiToken.Scope.values if scope in scopes]


def api_token_create(*, user: User, name: str, scopes: list[str], read_only: bool = False) -> tuple[ApiToken, str]:
    """Create a token and return it with its clear key, which is never stored and shown only now.

    `scopes` is required: a new token says which parts of the API it is for (ApiToken.Scope).
    """
    scopes = check_token_scopes(scopes)
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, read_only=read_only, scopes=scopes,
        prefix=key[: len(TOKEN_PREFIX) + 6], key_hash=hash_token(key),
    )
    return token, key


def api_token_update(*, token: ApiToken, name: str, scopes: list[str], read_only: bool) -> None:
    token.scopes = check_token_scopes(scopes)
    token.name = name
    token.read_only = read_only
    token.save(update_fields=["name", "scopes", "read_only"])


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
