"""The ticket sidebar's "Phone" panel (tickets/panels.py): call buttons, opt-outs, WhatsApp's
window with the template form, open callback requests. (The composer counts SMS segments itself.)"""

from __future__ import annotations

from django.db.models import Q

from channels_inbound.twilio import messaging
from customers.models import ContactPreference, Identity
from tickets.models import Ticket


def ticket_panel_context(request, ticket: Ticket) -> dict | None:
    from channels_inbound.twilio.views import voice_channel_for_tokens

    phones = list(ticket.customer.identities.filter(kind=Identity.Kind.PHONE, verified=True).order_by("pk"))
    callbacks = list(ticket.callbacks.filter(done_at__isnull=True).order_by("preferred_at", "pk"))
    if not phones and not callbacks:
        return None
    preferences = {
        (p.identity_id, p.channel_kind): p
        for p in ContactPreference.objects.filter(identity__in=phones)
    }
    kinds = set(ticket.entries.filter(Q(channel__kind__in=["sms", "whatsapp"])).values_list("channel__kind", flat=True))
    rows = []
    for phone in phones:
        sms = preferences.get((phone.pk, "sms"))
        whatsapp = preferences.get((phone.pk, "whatsapp"))
        rows.append({
            "identity": phone,
            "sms_opted_out_at": sms.opted_out_at if sms else None,
            "whatsapp_opted_out_at": whatsapp.opted_out_at if whatsapp else None,
            "whatsapp_window_until": messaging.window_open_until(identity=phone) if "whatsapp" in kinds else None,
        })
    return {
        "ticket": ticket, "phones": rows, "callbacks": callbacks,
        "can_call": voice_channel_for_tokens() is not None,
        "whatsapp": "whatsapp" in kinds,
    }


def customer_panel_context(request, customer) -> dict | None:
    """Call buttons on the customer's profile (the ticket page has its own Phone panel)."""
    from channels_inbound.twilio.views import voice_channel_for_tokens

    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != "customer-detail":
        return None
    phones = list(customer.identities.filter(kind=Identity.Kind.PHONE, verified=True).order_by("pk"))
    if not phones or voice_channel_for_tokens() is None:
        return None
    return {"phones": phones}


def register() -> None:
    from tickets.panels import register_customer_panel, register_ticket_panel

    register_ticket_panel("twilio/_ticket_panel.html", context=ticket_panel_context, order=30)
    register_customer_panel("twilio/_customer_panel.html", context=customer_panel_context, order=30)


