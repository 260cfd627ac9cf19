"""Translated labels for values stored as codes (statuses and priorities inside system events)."""

from __future__ import annotations

from django import template

from tickets.models import Ticket

register = template.Library()


@register.filter
def status_label(code: str) -> str:
    return dict(Ticket.Status.choices).get(code, code)


@register.filter
def priority_label(code: str) -> str:
    return dict(Ticket.Priority.choices).get(code, code)
