"""Signed links that work without signing in: a ticket's status page and survey answers.

Each purpose has its own salt, so a status link can never be replayed as a survey answer. A link
names the ticket by its unguessable public id *and* the customer it was issued to; it works only
while that ticket belongs to that customer (or to the customer it was merged into), so an un-merge
takes it back like any other access.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.urls import reverse

if TYPE_CHECKING:
    from tickets.models import SurveyInvitation, Ticket

STATUS_SALT = "omnicenter.portal.status"
CSAT_SALT = "omnicenter.portal.csat"
NPS_SALT = "omnicenter.portal.nps"


class BadLink(Exception):
    """Tampered, expired or for another purpose."""


def _absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path


def _ticket_token(ticket: Ticket, salt: str) -> str:
    return signing.dumps({"t": ticket.public_id.hex, "c": ticket.customer_id}, salt=salt, compress=True)


def _load(token: str, salt: str, max_age: timedelta) -> dict:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.BadSignature as exc:  # SignatureExpired is a BadSignature
        raise BadLink(str(exc)) from exc
    if not isinstance(data, dict):
        raise BadLink("unexpected payload")
    return data


def status_token(ticket: Ticket) -> str:
    return _ticket_token(ticket, STATUS_SALT)


def status_url(ticket: Ticket) -> str:
    """The link every outgoing notification carries (email footer; SMS adapters append it too)."""
    return _absolute(reverse("portal-status", args=[status_token(ticket)]))


def load_status(token: str) -> tuple[str, int]:
    data = _load(token, STATUS_SALT, timedelta(days=settings.PORTAL_STATUS_LINK_DAYS))
    return str(data.get("t", "")), int(data.get("c", 0))


def csat_url(ticket: Ticket, score: int | None = None) -> str:
    path = reverse("portal-csat-link", args=[_ticket_token(ticket, CSAT_SALT)])
    return _absolute(path + (f"?score={score}" if score else ""))


def load_csat(token: str) -> tuple[str, int]:
    data = _load(token, CSAT_SALT, timedelta(days=settings.SURVEY_LINK_DAYS))
    return str(data.get("t", "")), int(data.get("c", 0))


def nps_url(invitation: SurveyInvitation) -> str:
    token = signing.dumps({"i": invitation.pk, "c": invitation.customer_id}, salt=NPS_SALT, compress=True)
    return _absolute(reverse("portal-nps-link", args=[token]))


def load_nps(token: str) -> tuple[int, int]:
    data = _load(token, NPS_SALT, timedelta(days=settings.SURVEY_LINK_DAYS))
    return int(data.get("i", 0)), int(data.get("c", 0))
