"""Reads for the portal. Every ticket a customer reaches goes through `ticket_for_customer` or
`customer_tickets`, which only ever return tickets of the signed-in customer (after merges: of the
surviving profile). Anything else is a 404, never a 403: its existence is not disclosed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from tickets.models import Attachment, Ticket, TimelineEntry

if TYPE_CHECKING:
    from uuid import UUID

logger = logging.getLogger(__name__)

PUBLIC_KINDS = (TimelineEntry.Kind.MESSAGE, TimelineEntry.Kind.CALL)

# What a customer reads instead of our internal statuses.
PLAIN_STATUS = {
    Ticket.Status.NEW: _("We're working on it"),
    Ticket.Status.OPEN: _("We're working on it"),
    Ticket.Status.PENDING: _("Waiting for your reply"),
    Ticket.Status.SOLVED: _("Solved"),
    Ticket.Status.CLOSED: _("Closed"),
}


def plain_status(ticket: Ticket) -> str:
    return str(PLAIN_STATUS.get(ticket.status, ticket.status))


def portal_customer(customer_id: int | None) -> Customer | None:
    """The customer a portal session or link stands for: after a merge the surviving profile, so
    a merged customer keeps access to both former profiles' tickets; an erased one has none."""
    if not customer_id:
        return None
    seen = set()
    customer = Customer.objects.filter(pk=customer_id).first()
    while customer is not None and customer.merged_into_id and customer.pk not in seen:
        seen.add(customer.pk)
        customer = Customer.objects.filter(pk=customer.merged_into_id).first()
    if customer is None or customer.erased_at:
        return None
    return customer


def customer_tickets(customer: Customer) -> QuerySet[Ticket]:
    return Ticket.objects.filter(customer=customer).select_related("origin_channel").order_by("-last_message_at", "-pk")


def ticket_for_customer(customer: Customer, number: int | str) -> Ticket:
    try:
        number = int(number)
    except (TypeError, ValueError) as exc:
        raise Http404 from exc
    ticket = customer_tickets(customer).filter(pk=number).first()
    if ticket is None:
        raise Http404
    return ticket


def ticket_by_link(public_id_hex: str, customer_id: int) -> Ticket:
    """The ticket a signed link names, if it still belongs to the customer the link was issued to."""
    customer = portal_customer(customer_id)
    ticket = Ticket.objects.filter(public_id=public_id_hex).first() if _is_hex32(public_id_hex) else None
    if customer is None or ticket is None or ticket.customer_id != customer.pk:
        raise Http404
    return ticket


def _is_hex32(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def public_timeline(ticket: Ticket) -> QuerySet[TimelineEntry]:
    """Messages and calls only: internal notes and system events never reach a customer."""
    return (
        TimelineEntry.objects.filter(ticket=ticket, kind__in=PUBLIC_KINDS)
        .select_related("channel", "author_user")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
        .order_by("created_at", "pk")
    )


def public_attachment(public_id: UUID, ticket_ids: QuerySet | list[int]) -> Attachment:
    attachment = (
        Attachment.objects.select_related("entry")
        .filter(public_id=public_id, entry__kind__in=PUBLIC_KINDS, entry__ticket_id__in=ticket_ids)
        .first()
    )
    if attachment is None:
        raise Http404
    return attachment


def article_suggestions(text: str, language: str) -> list[dict]:
    """Published public help-center articles for what the customer is typing (deflection): the
    knowledge base's search over any of the words, in the customer's language, at most five."""
    from knowledge import search
    from knowledge.selectors import readable_articles, readable_translations

    if len(text.strip()) < 3:
        return []
    found = search.search(readable_translations(None).select_related("article"), q=text, language=language,
                          any_word=True, articles=readable_articles(None))[:5]
    return [
        {"id": translation.article.slug, "title": translation.title,
         "url": reverse("help-article", args=[translation.language, translation.article.slug])}
        for translation in found
    ]


def products_owned(customer: Customer) -> list[dict]:
    """The customer's products from the catalog, named in their language."""
    from catalog.selectors import owned_products, product_text_for

    return [
        {"name": product_text_for(owned.product, language=customer.language, channel="portal").name,
         "reference": owned.reference, "status": owned.get_status_display(), "end_date": owned.end_date}
        for owned in owned_products(customer)
    ]


def callbacks_due(tickets: QuerySet[Ticket], *, until=None) -> QuerySet:
    """Open callback requests on `tickets` (pass a permission-scoped queryset, e.g.
    `tickets.selectors.tickets_visible_to(user)`), earliest first; with `until`, only those due by then.
    For the workspace's "Callbacks due" view."""
    from tickets.models import CallbackRequest

    queryset = CallbackRequest.objects.filter(ticket__in=tickets, done_at__isnull=True)
    if until is not None:
        queryset = queryset.filter(preferred_at__lte=until)
    return queryset.select_related("ticket", "ticket__customer").order_by("preferred_at", "pk")
