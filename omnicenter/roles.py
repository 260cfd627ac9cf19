"""Roles are Django groups. Admin includes supervisor includes agent."""

from __future__ import annotations

from typing import Any

AGENT = "agent"
SUPERVISOR = "supervisor"
ADMIN = "admin"
ROLES = (AGENT, SUPERVISOR, ADMIN)


def _groups(user: Any) -> set[str]:
    cached = getattr(user, "_oc_groups", None)
    if cached is None:
        if not user.is_authenticated:
            cached = set()
        elif "groups" in getattr(user, "_prefetched_objects_cache", {}):
            cached = {g.name for g in user.groups.all()}
        else:
            cached = set(user.groups.values_list("name", flat=True))
        user._oc_groups = cached
    return cached


def is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and (user.is_superuser or ADMIN in _groups(user)))


def is_supervisor(user: Any) -> bool:
    return is_admin(user) or bool(user and user.is_authenticated and user.is_active and SUPERVISOR in _groups(user))


def is_agent(user: Any) -> bool:
    return is_supervisor(user) or bool(user and user.is_authenticated and user.is_active and AGENT in _groups(user))


def role_of(user: Any) -> str | None:
    if is_admin(user):
        return ADMIN
    if is_supervisor(user):
        return SUPERVISOR
    if is_agent(user):
        return AGENT
    return None
