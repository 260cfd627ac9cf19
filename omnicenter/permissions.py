from __future__ import annotations

from rest_framework import permissions

from omnicenter import roles
from omnicenter.models import ApiToken


def _token_allows(request) -> bool:
    token = request.auth
    if isinstance(token, ApiToken) and token.read_only:
        return request.method in permissions.SAFE_METHODS
    return True


class IsStaffMember(permissions.BasePermission):
    """Agents, supervisors and admins; read-only tokens may only read."""

    def has_permission(self, request, view) -> bool:
        return roles.is_agent(request.user) and _token_allows(request)


class IsSupervisor(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return roles.is_supervisor(request.user) and _token_allows(request)


class IsAdmin(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return roles.is_admin(request.user) and _token_allows(request)


class AdminWritesStaffReads(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return roles.is_agent(request.user)
        return roles.is_admin(request.user) and _token_allows(request)
