"""Domain errors raised by services. One place (api_errors.py) maps them to HTTP."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status_code = 400
    code = "invalid"
    default_message = _("The request cannot be carried out.")

    def __init__(self, message: str | None = None):
        self.message = str(message or self.default_message)
        super().__init__(self.message)


class NotAllowed(DomainError):
    status_code = 403
    code = "not_allowed"
    default_message = _("You are not allowed to do this.")


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    default_message = _("This conflicts with the current state.")
