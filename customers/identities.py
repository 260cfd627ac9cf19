"""Normalizing identity values: one spelling per address, so that lookups are exact."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from customers.models import Identity
from omnicenter.errors import DomainError

Kind = Identity.Kind

# DESIGN.md step 6: an external id beats an email, which beats a phone number.
PRECEDENCE = {
    Kind.EXTERNAL: 0,
    Kind.MESSENGER: 0,
    Kind.INSTAGRAM: 0,
    Kind.TELEGRAM: 0,
    Kind.VISITOR: 0,
    Kind.EMAIL: 1,
    Kind.PHONE: 2,
}


class InvalidIdentity(DomainError):
    code = "invalid_identity"


@dataclass(frozen=True)
class IdentityClaim:
    kind: str
    value: str
    namespace: str = ""
    verified: bool = True
    display_name: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.value)


def normalize_email(value: str) -> str:
    value = (value or "").strip().strip("<>").strip()
    if "@" not in value:
        raise InvalidIdentity(_("“%(value)s” is not an email address.") % {"value": value})
    local, _sep, domain = value.rpartition("@")
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidIdentity(_("“%(value)s” has an invalid domain.") % {"value": value}) from exc
    normalized = f"{local}@{domain}".lower()
    try:
        validate_email(normalized)
    except ValidationError as exc:
        raise InvalidIdentity(_("“%(value)s” is not an email address.") % {"value": value}) from exc
    return normalized


def normalize_phone(value: str, region: str | None = None) -> str:
    raw = (value or "").strip()
    for prefix in ("whatsapp:", "tel:", "sms:"):
        if raw.lower().startswith(prefix):
            raw = raw[len(prefix):]
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(_("“%(value)s” is not a phone number.") % {"value": value}) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(_("“%(value)s” is not a phone number.") % {"value": value})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, value: str) -> str:
    if kind == Kind.EMAIL:
        return normalize_email(value)
    if kind == Kind.PHONE:
        return normalize_phone(value)
    if kind not in Kind.values:
        raise InvalidIdentity(_("Unknown identity kind “%(kind)s”.") % {"kind": kind})
    value = (value or "").strip()
    if not value or len(value) > 320:
        raise InvalidIdentity(_("An identity value must be 1 to 320 characters long."))
    return value


def claim(kind: str, value: str, *, namespace: str = "", verified: bool = True, display_name: str = "") -> IdentityClaim:
    """Build a normalized claim; raises InvalidIdentity with a readable message."""
    return IdentityClaim(
        kind=kind, value=normalize(kind, value), namespace=namespace, verified=verified,
        display_name=(display_name or "").strip()[:200],
    )
