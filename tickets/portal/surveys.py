"""Satisfaction surveys: CSAT when a ticket is solved, NPS on a per-channel schedule.

Where a question goes: the channel and identity the customer last wrote from (the same choice as a
reply, `tickets.services.reply_target`). A channel kind that shows surveys itself (the chat widget
asks inline) registers a sender with `register_inline_survey(kind, fn)`; `fn(invitation)` is
called instead of sending a link. Other kinds get a text with links through their adapter's
`send_text`; when the channel cannot send notifications, an email identity of the customer gets it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_inbound.base import PermanentSendError, TransientSendError
from customers.models import ContactPreference, Customer, Identity
from omnicenter.errors import Conflict, DomainError
from tickets.models import CsatRating, CsatRatingChange, NpsResponse, SurveyInvitation, Ticket, TimelineEntry
from tickets.portal import links

if TYPE_CHECKING:
    from channels_inbound.models import Channel

logger = logging.getLogger(__name__)
Kind = SurveyInvitation.Kind

_inline_senders: dict[str, Callable[[SurveyInvitation], None]] = {}


def register_inline_survey(channel_kind: str, sender: Callable[[SurveyInvitation], None]) -> None:
    """A channel that asks surveys itself (webchat: inline in the widget). `sender(invitation)`
    shows the question; the answer comes back through `csat_rate` / `nps_answer`."""
    _inline_senders[channel_kind] = sender


class RatingLocked(Conflict):
    code = "rating_locked"
    default_message = gettext_lazy("This rating can no longer be changed.")


class NotRatable(Conflict):
    code = "not_ratable"
    default_message = gettext_lazy("A request can be rated once it is solved.")


# --- CSAT ---------------------------------------------------------------------------------------


def csat_invite_on_solve(ticket: Ticket) -> None:
    """Called by `ticket_set_status` inside its transaction: ask once the solve has committed."""
    from tickets.portal.tasks import send_csat_invitation

    ticket_id = ticket.pk
    transaction.on_commit(lambda: send_csat_invitation.delay(ticket_id), robust=True)


def _target(ticket: Ticket) -> tuple[Channel | None, Identity | None]:
    from tickets.services import NoReplyChannel, reply_target

    try:
        return reply_target(ticket)
    except NoReplyChannel:
        identity = ticket.customer.identities.filter(verified=True, kind=Identity.Kind.EMAIL).first()
        return None, identity


def csat_invitation_create(*, ticket: Ticket) -> SurveyInvitation | None:
    """The ticket's one CSAT invitation, unless it already has one or is no longer solved."""
    ticket = Ticket.objects.select_related("customer").filter(pk=ticket.pk).first()
    if ticket is None or ticket.status != Ticket.Status.SOLVED or hasattr(ticket, "csat"):
        return None
    channel, identity = _target(ticket)
    try:
        with transaction.atomic():
            return SurveyInvitation.objects.create(kind=Kind.CSAT, customer=ticket.customer, ticket=ticket,
                                                   channel=channel, identity=identity)
    except IntegrityError:
        return None  # asked before (a ticket solved, reopened and solved again is asked once)


def _opted_out(identity: Identity, channel_kind: str) -> bool:
    return ContactPreference.objects.filter(identity=identity, channel_kind=channel_kind, opted_out_at__isnull=False).exists()


def _csat_text(invitation: SurveyInvitation) -> tuple[str, str]:
    ticket = invitation.ticket
    subject = _("How did we do? Request #%(number)s") % {"number": ticket.number}
    lines = [
        _("Your request #%(number)s (%(subject)s) is solved. How satisfied are you with our help?")
        % {"number": ticket.number, "subject": ticket.subject},
        "",
    ]
    if invitation.channel is not None and invitation.channel.kind != "email":
        lines.append(_("Rate us from 1 (bad) to 5 (great): %(url)s") % {"url": links.csat_url(ticket)})
    else:
        labels = {5: _("Great"), 4: _("Good"), 3: _("OK"), 2: _("Bad"), 1: _("Very bad")}
        for score in (5, 4, 3, 2, 1):
            lines.append(f"{score} – {labels[score]}: {links.csat_url(ticket, score)}")
    return subject, "\n".join(lines)


def _nps_text(invitation: SurveyInvitation) -> tuple[str, str]:
    subject = _("Would you recommend us?")
    text = _(
        "How likely are you to recommend us to a friend or colleague, from 0 (not at all) to 10 (extremely)? "
        "Answer here: %(url)s"
    ) % {"url": links.nps_url(invitation)}
    return subject, text


def survey_invitation_send(*, invitation_id: int, final_attempt: bool = True) -> str:
    """Send an invitation once (claimed with a conditional UPDATE). Returns the outcome. A
    transient failure before the final attempt releases the claim and raises, for the task to retry."""
    from tickets.portal.notify import send_to_identity

    claimed = SurveyInvitation.objects.filter(pk=invitation_id, outcome="").update(outcome="sending")
    if not claimed:
        return "skipped"
    invitation = SurveyInvitation.objects.select_related("customer", "ticket", "channel", "identity").get(pk=invitation_id)
    channel, identity = invitation.channel, invitation.identity

    def finish(outcome: str, error: str = "") -> str:
        SurveyInvitation.objects.filter(pk=invitation_id).update(
            outcome=outcome, error=error[:2000], sent_at=timezone.now() if outcome in ("sent", "inline") else None
        )
        return outcome

    if identity is None or invitation.customer.erased_at:
        return finish("skipped", "no identity to ask")
    if _opted_out(identity, channel.kind if channel else "email"):
        return finish("skipped", "opted out")
    if channel is not None and channel.kind in _inline_senders:
        _inline_senders[channel.kind](invitation)
        return finish("inline")
    with translation.override(invitation.customer.language or None):
        subject, text = (_csat_text if invitation.kind == Kind.CSAT else _nps_text)(invitation)
    try:
        send_to_identity(identity, text, subject=subject, prefer=channel)
    except TransientSendError as exc:
        if not final_attempt:
            SurveyInvitation.objects.filter(pk=invitation_id).update(outcome="", error=str(exc)[:2000])
            raise
        logger.warning("survey invitation %s not sent: %s", invitation_id, exc)
        return finish("failed", str(exc))
    except PermanentSendError as exc:
        logger.warning("survey invitation %s not sent: %s", invitation_id, exc)
        return finish("failed", str(exc))
    return finish("sent")


@transaction.atomic
def csat_rate(*, ticket: Ticket, customer: Customer, score: int, comment: str = "") -> CsatRating:
    """Rate a solved ticket 1-5. Changing the rating is allowed for CSAT_CHANGE_DAYS after it was
    first given; every version is kept in the history."""
    ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket.pk)
    if ticket.customer_id != customer.pk:
        raise DomainError(_("This request is not yours."))
    if ticket.status not in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        raise NotRatable()
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise DomainError(_("Choose a rating from 1 to 5."))
    comment = (comment or "").strip()[:4000]
    rating = CsatRating.objects.filter(ticket=ticket).first()
    if rating is None:
        last_in = ticket.entries.filter(direction=TimelineEntry.Direction.INBOUND, channel__isnull=False).order_by("-created_at").first()
        rating = CsatRating.objects.create(
            ticket=ticket, customer=customer, team_id=ticket.team_id, agent_id=ticket.assignee_id,
            channel_id=last_in.channel_id if last_in else ticket.origin_channel_id, score=score, comment=comment,
        )
    else:
        if timezone.now() - rating.created_at > timedelta(days=settings.CSAT_CHANGE_DAYS):
            raise RatingLocked()
        if (rating.score, rating.comment) == (score, comment):
            return rating
        rating.score, rating.comment = score, comment
        rating.save(update_fields=["score", "comment", "updated_at"])
    CsatRatingChange.objects.create(rating=rating, score=score, comment=comment)
    return rating


def csat_can_change(rating: CsatRating | None) -> bool:
    return rating is None or timezone.now() - rating.created_at <= timedelta(days=settings.CSAT_CHANGE_DAYS)


# --- NPS ----------------------------------------------------------------------------------------


@transaction.atomic
def nps_answer(*, invitation: SurveyInvitation, customer: Customer, score: int, comment: str = "") -> NpsResponse:
    if invitation.kind != Kind.NPS or invitation.customer_id != customer.pk:
        raise DomainError(_("This survey is not yours."))
    if not isinstance(score, int) or not 0 <= score <= 10:
        raise DomainError(_("Choose a score from 0 to 10."))
    response, _created = NpsResponse.objects.update_or_create(
        invitation=invitation, defaults={"customer": customer, "score": score, "comment": (comment or "").strip()[:4000]},
    )
    return response


def nps_invitations_create(*, batch: int | None = None) -> list[int]:
    """Pick customers due for NPS per NPS_SCHEDULE: they wrote on a channel of that kind within
    NPS_RECENT_CONTACT_DAYS, were not asked NPS within the kind's interval, got no survey of any
    kind within NPS_QUIET_DAYS, and have not opted out on that kind. Bounded; returns invitation ids."""
    batch = batch or settings.NPS_BATCH
    now = timezone.now()
    created: list[int] = []
    for kind, every_days in settings.NPS_SCHEDULE.items():
        if every_days <= 0 or len(created) >= batch:
            continue
        recent = TimelineEntry.objects.filter(
            direction=TimelineEntry.Direction.INBOUND, channel__kind=kind, channel__is_active=True,
            created_at__gte=now - timedelta(days=settings.NPS_RECENT_CONTACT_DAYS), identity__isnull=False,
        )
        asked_nps = SurveyInvitation.objects.filter(customer=OuterRef("ticket__customer"), kind=Kind.NPS,
                                                    created_at__gte=now - timedelta(days=every_days))
        asked_any = SurveyInvitation.objects.filter(customer=OuterRef("ticket__customer"),
                                                    created_at__gte=now - timedelta(days=settings.NPS_QUIET_DAYS))
        opted_out = ContactPreference.objects.filter(identity=OuterRef("identity"), channel_kind=kind, opted_out_at__isnull=False)
        rows = (
            recent.filter(ticket__customer__erased_at__isnull=True, ticket__customer__merged_into__isnull=True,
                          identity__customer=F("ticket__customer"))
            .exclude(Exists(asked_nps)).exclude(Exists(asked_any)).exclude(Exists(opted_out))
            .order_by("ticket__customer_id", "-created_at")
            .distinct("ticket__customer_id")
            .values_list("ticket__customer_id", "ticket_id", "channel_id", "identity_id")[: batch - len(created)]
        )
        for customer_id, ticket_id, channel_id, identity_id in rows:
            invitation = SurveyInvitation.objects.create(kind=Kind.NPS, customer_id=customer_id, ticket_id=ticket_id,
                                                         channel_id=channel_id, identity_id=identity_id)
            created.append(invitation.pk)
    return created


# --- reports ------------------------------------------------------------------------------------

GROUPINGS = {
    "team": ("team_id", "invitation__ticket__team_id"),
    "agent": ("agent_id", "invitation__ticket__assignee_id"),
    "channel": ("channel__kind", "invitation__channel__kind"),
}
PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


def survey_report(*, by: str, start=None, end=None, period: str = "month") -> list[dict]:
    """CSAT % (share of 4 and 5 ratings) and NPS (% promoters 9-10 minus % detractors 0-6) per
    team, agent, channel kind or period (`by="period"`, truncated to day, week or month), for
    results given in [start, end). Two aggregate queries whatever the number of rows."""
    if by not in (*GROUPINGS, "period"):
        raise DomainError(_("Unknown grouping %(by)s.") % {"by": by})
    csat = CsatRating.objects.all()
    nps = NpsResponse.objects.all()
    if start is not None:
        csat, nps = csat.filter(created_at__gte=start), nps.filter(created_at__gte=start)
    if end is not None:
        csat, nps = csat.filter(created_at__lt=end), nps.filter(created_at__lt=end)
    if by == "period":
        trunc = PERIODS.get(period)
        if trunc is None:
            raise DomainError(_("Unknown period %(period)s.") % {"period": period})
        csat, nps = csat.annotate(key=trunc("created_at")), nps.annotate(key=trunc("created_at"))
        csat_key = nps_key = "key"
    else:
        csat_key, nps_key = GROUPINGS[by]
    rows: dict = {}
    for row in csat.values(csat_key).annotate(n=Count("pk"), good=Count("pk", filter=Q(score__gte=4))).order_by():
        entry = rows.setdefault(row[csat_key], _empty(row[csat_key]))
        entry["csat_count"], entry["csat_satisfied"] = row["n"], row["good"]
        entry["csat_percent"] = round(100 * row["good"] / row["n"], 1)
    for row in nps.values(nps_key).annotate(
        n=Count("pk"), promoters=Count("pk", filter=Q(score__gte=9)), detractors=Count("pk", filter=Q(score__lte=6)),
    ).order_by():
        entry = rows.setdefault(row[nps_key], _empty(row[nps_key]))
        entry["nps_count"], entry["promoters"], entry["detractors"] = row["n"], row["promoters"], row["detractors"]
        entry["nps"] = round(100 * (row["promoters"] - row["detractors"]) / row["n"], 1)
    return sorted(rows.values(), key=lambda r: (r["key"] is None, str(r["key"])))


def _empty(key) -> dict:
    return {"key": key, "csat_count": 0, "csat_satisfied": 0, "csat_percent": None,
            "nps_count": 0, "promoters": 0, "detractors": 0, "nps": None}


def customer_survey_summary(customer: Customer) -> dict:
    """For the workspace's customer panel: the latest ratings and NPS answers. Ratings follow their
    tickets and NPS answers include profiles merged into this one, so a merge shows both histories."""
    ours = CsatRating.objects.filter(ticket__customer=customer)
    ratings = list(ours.order_by("-updated_at")[:5])
    agg = ours.aggregate(n=Count("pk"), good=Count("pk", filter=Q(score__gte=4)))
    latest_nps = (
        NpsResponse.objects.filter(Q(customer=customer) | Q(customer__merged_into=customer)).order_by("-created_at").first()
    )
    return {
        "ratings": ratings,
        "csat_count": agg["n"],
        "csat_percent": round(100 * agg["good"] / agg["n"]) if agg["n"] else None,
        "latest_nps": latest_nps,
    }
