"""Reads that more than one caller needs, each one permission-aware."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.http import Http404

from omnicenter import roles
from tickets.models import Ticket, TimelineEntry

if TYPE_CHECKING:
    from customers.models import Customer
    from omnicenter.models import User


def team_ids_of(user: User) -> list[int]:
    cached = getattr(user, "_oc_team_ids", None)
    if cached is None:
        cached = list(user.teams.values_list("pk", flat=True))
        user._oc_team_ids = cached
    return cached


def tickets_visible_to(user: User) -> QuerySet[Ticket]:
    """Supervisors and admins see every ticket; an agent sees their teams' tickets and their own."""
    queryset = Ticket.objects.all()
    if roles.is_supervisor(user):
        return queryset
    if not roles.is_agent(user):
        return queryset.none()
    return queryset.filter(Q(team_id__in=team_ids_of(user)) | Q(assignee=user))


def ticket_for_agent(user: User, ticket_id: int | str, *, select: tuple[str, ...] = ()) -> Ticket:
    """The ticket if `user` may see it, else 404 (never 403: its existence is not disclosed).
    `select`: more relations to join in the same query."""
    try:
        ticket_id = int(ticket_id)
    except (TypeError, ValueError) as exc:
        raise Http404 from exc
    ticket = (
        tickets_visible_to(user).select_related("customer", "team", "assignee", "origin_channel", *select)
        .filter(pk=ticket_id).first()
    )
    if ticket is None:
        raise Http404
    return ticket


def tickets_list(user: User) -> QuerySet[Ticket]:
    return (
        tickets_visible_to(user)
        .select_related("customer", "team", "assignee", "origin_channel")
        .prefetch_related("tags")
        .order_by("-last_message_at", "-pk")
    )


def tickets_of_customer(customer: Customer) -> QuerySet[Ticket]:
    return Ticket.objects.filter(customer=customer).order_by("-created_at")


def timeline_of(queryset_filter: Q) -> QuerySet[TimelineEntry]:
    return (
        TimelineEntry.objects.filter(queryset_filter)
        .select_related("channel", "identity", "author_user", "author_customer")
        .prefetch_related("attachments")
        .order_by("created_at", "pk")
    )


def ticket_timeline(ticket: Ticket) -> QuerySet[TimelineEntry]:
    return timeline_of(Q(ticket=ticket))


def customer_timeline(user: User, customer: Customer) -> QuerySet[TimelineEntry]:
    """Every entry of the customer's tickets that `user` may see, across channels, oldest first."""
    return timeline_of(Q(ticket__in=tickets_visible_to(user).filter(customer=customer)))
