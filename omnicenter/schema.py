"""OpenAPI generation: each operation documents the API-token scope it needs and the 403 without it."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular import openapi

from omnicenter.permissions import TOKEN_SCOPE_ANY

FORBIDDEN_BODY = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        scope = getattr(self.view, "token_scope", None)
        if operation is None or scope in (None, TOKEN_SCOPE_ANY):
            return operation
        operation["x-token-scope"] = scope
        note = _("API tokens need the “%(scope)s” scope; a token without it gets 403 with code `token_scope`.") % {
            "scope": scope,
        }
        operation["description"] = f"{operation['description']}\n\n{note}" if operation.get("description") else note
        forbidden = operation.setdefault("responses", {}).setdefault("403", {"description": ""})
        forbidden["description"] = " ".join(filter(None, [forbidden["description"], note]))
        forbidden.setdefault("content", {"application/json": {"schema": FORBIDDEN_BODY}})
        return operation
