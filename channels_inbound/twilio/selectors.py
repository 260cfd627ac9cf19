"""Reads other parts of the workspace need from the Twilio channels."""

from __future__ import annotations

from django.db.models import QuerySet

from channels_inbound.twilio.calls import CALLBACK_ACTION
from channels_inbound.twilio.messaging import opted_out_at, window_open_until
from tickets.models import TimelineEntry

__all__ = ["callbacks_due", "opted_out_at", "window_open_until"]


def callbacks_due(tickets: QuerySet) -> QuerySet[TimelineEntry]:
    """Open callback requests on the given (already permission-filtered) tickets, soonest due first:
    timeline entries of kind `event` whose `data.action` is "callback_requested" and `data.state` "open"."""
    return (
        TimelineEntry.objects.filter(ticket__in=tickets, kind=TimelineEntry.Kind.EVENT,
                                     data__action=CALLBACK_ACTION, data__state="open")
        .select_related("ticket", "ticket__customer").order_by("data__due_at", "created_at", "pk")
    )
