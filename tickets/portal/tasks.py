"""Portal and survey tasks: ids in, one service call (STYLE.md rule 10)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from channels_inbound.base import TransientSendError
from channels_inbound.delivery import secret_send
from omnicenter import crypto
from tickets.models import PortalLoginToken, Ticket

logger = logging.getLogger(__name__)


def _signin_text(token: PortalLoginToken, secret: str) -> tuple[str, str]:
    from django.urls import reverse

    if token.kind == PortalLoginToken.Kind.LINK:
        url = settings.PUBLIC_BASE_URL + reverse("portal-link", args=[secret])
        return _("Sign in to your support requests"), _(
            "Open this link to sign in to your support requests:\n\n%(url)s\n\n"
            "It works once, within %(minutes)s minutes. If you did not ask for it, ignore this message."
        ) % {"url": url, "minutes": settings.PORTAL_LINK_MINUTES}
    return _("Your sign-in code"), _(
        "Your sign-in code is %(code)s. It works once, within %(minutes)s minutes."
    ) % {"code": secret, "minutes": settings.PORTAL_CODE_MINUTES}


@shared_task(bind=True, autoretry_for=(TransientSendError,), retry_backoff=5, max_retries=3)
def send_signin_message(self, token_id: int) -> str:
    from tickets.portal.notify import send_to_identity

    token = PortalLoginToken.objects.select_related("identity", "customer").filter(pk=token_id).first()
    if token is None or not token.outbox or token.used_at or token.expires_at <= timezone.now():
        return "skipped"
    secret = crypto.decrypt_json(token.outbox)["secret"]
    with translation.override(token.customer.language or None):
        subject, text = _signin_text(token, secret)
    return secret_send(
        PortalLoginToken.objects.filter(pk=token_id),
        lambda: send_to_identity(token.identity, text, subject=subject),
        final_attempt=self.request.retries >= self.max_retries, what=f"portal sign-in message {token_id}",
    )


@shared_task(acks_late=True)
def send_csat_invitation(ticket_id: int) -> str:
    from tickets.portal.surveys import csat_invitation_create

    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return "skipped"
    invitation = csat_invitation_create(ticket=ticket)
    if invitation is None:
        return "skipped"
    send_survey_invitation.delay(invitation.pk)
    return "queued"


@shared_task(bind=True, acks_late=True, autoretry_for=(TransientSendError,), retry_backoff=30, max_retries=4)
def send_survey_invitation(self, invitation_id: int) -> str:
    from tickets.portal.surveys import survey_invitation_send

    return survey_invitation_send(invitation_id=invitation_id, final_attempt=self.request.retries >= self.max_retries)


@shared_task
def send_nps_surveys() -> int:
    from tickets.portal.surveys import nps_invitations_create

    ids = nps_invitations_create()
    for invitation_id in ids:
        send_survey_invitation.delay(invitation_id)
    return len(ids)
