"""The ticket sidebar's "Phone" panel (tickets/panels.py): call buttons, opt-outs, WhatsApp's
window with the template form, open callback requests, and the SMS segment counter."""

from __future__ import annotations

from django.db.models import Q

from channels_inbound.twilio import messaging
from channels_inbound.twilio.selectors import callbacks_due
from customers.models import ContactPreference, Identity
from tickets.models import Ticket


def ticket_panel_context(request, ticket: Ticket) -> dict | None:
    from channels_inbound.twilio.views import voice_channel_for_tokens

    phones = list(ticket.customer.identities.filter(kind=Identity.Kind.PHONE, verified=True).order_by("pk"))
    callbacks = list(callbacks_due(Ticket.objects.filter(pk=ticket.pk)))
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
        "whatsapp": "whatsapp" in kinds, "sms": "sms" in kinds,
    }


def register() -> None:
    from tickets.panels import register_ticket_panel

    register_ticket_panel("twilio/_ticket_panel.html", context=ticket_panel_context, order=30)


