"""Render the panels other apps registered in ``tickets.panels``."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from tickets import panels

register = template.Library()


def _render(context, registered, obj) -> str:
    request = context.get("request")
    html = []
    for panel in registered:
        extra = panel.context(request, obj) if panel.context else {}
        if extra is None:
            continue
        html.append(render_to_string(panel.template_name, {"object": obj, **extra}, request=request))
    return mark_safe("".join(html))  # noqa: S308 - each part is a rendered, autoescaped template


@register.simple_tag(takes_context=True)
def ticket_panels(context, ticket) -> str:
    return _render(context, panels.ticket_panels(), ticket)


@register.simple_tag(takes_context=True)
def customer_panels(context, customer) -> str:
    return _render(context, panels.customer_panels(), customer)
