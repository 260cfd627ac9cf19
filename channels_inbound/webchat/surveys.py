"""The portal's CSAT survey, asked inline in the web chat widget.

When a ticket that came through a web chat is solved, the survey service (tickets/portal/surveys.py)
hands the invitation to `ask_inline`: an online visitor sees a 1-5 rating in the widget (frame
`{"type": "survey", "id": "inv-<invitation id>"}`); an offline one gets the usual link another way.
The visitor's answer comes back over their socket to `record_answer`, which accepts it only for an
invitation addressed to that same visitor identity, and records it with `csat_rate`.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils.translation import gettext as _

from omnicenter.errors import DomainError

SURVEY_ID = re.compile(r"inv-(\d{1,18})")


def ask_inline(invitation) -> bool:
    """Show the CSAT question in the widget; False when the visitor is not connected."""
    from channels_inbound.webchat import services

    if invitation.kind != "csat" or invitation.identity is None or invitation.identity.kind != "visitor":
        return False
    ticket = invitation.ticket
    question = _("How did we do with #%(number)s?") % {"number": ticket.number} if ticket else ""
    return services.survey_prompt_send(channel=invitation.channel, visitor_id=invitation.identity.value,
                                       survey_id=f"inv-{invitation.pk}", question=question)


def record_answer(*, channel, identity, survey_id: str, rating: int) -> None:
    """A visitor answered an inline survey. Only the visitor it was sent to can answer it."""
    from channels_inbound.webchat.services import WebchatError
    from tickets.models import SurveyInvitation
    from tickets.portal.surveys import csat_rate

    match = SURVEY_ID.fullmatch(survey_id or "")
    if match is None:
        return  # not one of the survey service's invitations (another handler's survey)
    invitation = None
    if identity is not None:
        invitation = (
            SurveyInvitation.objects.select_related("ticket", "customer")
            .filter(pk=int(match.group(1)), kind="csat", identity=identity, ticket__isnull=False).first()
        )
    if invitation is None:
        raise WebchatError("bad_request", _("Unknown survey."))
    try:
        with transaction.atomic():
            csat_rate(ticket=invitation.ticket, customer=invitation.ticket.customer, score=rating)
    except DomainError as exc:
        raise WebchatError("survey_closed", exc.message) from exc


def connect() -> None:
    from channels_inbound.webchat import services
    from tickets.portal.surveys import register_inline_survey

    register_inline_survey("webchat", ask_inline)
    if record_answer not in services.survey_answer_handlers:
        services.survey_answer_handlers.append(record_answer)
