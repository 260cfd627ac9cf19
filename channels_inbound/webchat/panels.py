"""The web chat panel in the ticket sidebar (tickets/panels.py): who the chat visitor is, whether
they are typing, and the script that tells the visitor when the agent types or has seen the chat."""

from __future__ import annotations

from django.urls import reverse

from channels_inbound.models import Channel
from customers.models import Identity
from tickets.models import TimelineEntry


def chat_panel_context(request, ticket) -> dict | None:
    visitor = (
        TimelineEntry.objects.filter(ticket=ticket, direction=TimelineEntry.Direction.INBOUND,
                                     channel__kind=Channel.Kind.WEBCHAT, identity__kind=Identity.Kind.VISITOR)
        .select_related("identity").order_by("-created_at").first()
    )
    if visitor is None:
        return None
    from channels_inbound.webchat.services import visitor_email_proof
    from channels_inbound.webchat.tokens import Visitor

    identity = visitor.identity
    confirmed, linked = visitor_email_proof(Visitor(channel_key=identity.namespace, id=identity.value), identity)
    return {
        "signed_in_user": identity.value.removeprefix("user:") if identity.value.startswith("user:") else "",
        "confirmed_email": confirmed,
        "confirmed_linked": linked,
        "typing_url": reverse("webchat-agent-typing", args=[ticket.pk]),
    }


def register() -> None:
    from tickets.panels import register_ticket_panel

    register_ticket_panel("webchat/_ticket_panel.html", context=chat_panel_context, order=5)
