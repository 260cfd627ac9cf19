from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import exceptions, permissions

from omnicenter import roles
from omnicenter.models import ApiToken

# What an API view declares, as `token_scope = ...`, for API tokens to reach it: one of
# ApiToken.Scope, or TOKEN_SCOPE_ANY for views that show no data (the API root, the OpenAPI schema).
# A view that declares nothing refuses every token (tests/omnicenter/test_token_scopes.py makes sure
# each /api/v1/ view declares one). Session (browser) requests are not affected.
TOKEN_SCOPE_ANY = "any"  # noqa: S105 (a scope name, not a secret)


def check_token_scope(request, token: ApiToken) -> None:
    """Raise 403 unless the view this request is for declares a scope the token has.

    Called by ApiTokenAuthentication for every token request, so no view can forget it.
    """
    view = (request.parser_context or {}).get("view")
    scope = getattr(view, "token_scope", None)
    if scope == TOKEN_SCOPE_ANY or (scope is not None and token.allows_scope(scope)):
        return
    if scope is None:
        detail = _("This endpoint cannot be used with an API token.")
    else:
        detail = _("This API token is not allowed to use “%(scope)s”; its scopes are: %(scopes)s.") % {
            "scope": scope, "scopes": ", ".join(token.scopes) or "-",
        }
    raise exceptions.PermissionDenied({"detail": detail, "code": "token_scope"})


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
