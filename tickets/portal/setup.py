"""Wiring done once at start-up (TicketsConfig.ready): Celery tasks and the workspace panels."""

from __future__ import annotations


def _ticket_rating(request, ticket) -> dict | None:
    from tickets.models import CsatRating

    rating = CsatRating.objects.filter(ticket=ticket).prefetch_related("history").first()
    return {"rating": rating}


def _customer_surveys(request, customer) -> dict | None:
    from tickets.portal.surveys import customer_survey_summary

    return customer_survey_summary(customer)


def ready() -> None:
    from tickets import panels
    from tickets.portal import tasks  # noqa: F401 - registers the portal's Celery tasks

    panels.register_ticket_panel("portal/_ticket_rating_panel.html", context=_ticket_rating, order=60)
    panels.register_customer_panel("portal/_customer_surveys_panel.html", context=_customer_surveys, order=60)
