"""Panels that other apps add to the agent workspace, without the workspace importing them.

An app registers a panel in its ``AppConfig.ready()``::

    from tickets.panels import register_ticket_panel
    register_ticket_panel("knowledge/_ticket_panel.html", context=suggestions_for, order=20)

``context(request, ticket)`` (or ``context(request, customer)`` for customer panels) returns the
template's context, or ``None`` to hide the panel. The workspace renders every registered panel in
its sidebar with ``{% ticket_panels ticket %}`` and ``{% customer_panels customer %}``
(``tickets/templatetags/oc_panels.py``). A panel puts text into the open composer by dispatching
``document.dispatchEvent(new CustomEvent("oc:insert", {detail: {text: "..."}}))``; the composer
inserts it at the cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Panel:
    template_name: str
    context: Callable[[Any, Any], dict | None] | None
    order: int


_ticket_panels: list[Panel] = []
_customer_panels: list[Panel] = []


def _register(panels: list[Panel], template_name: str, context, order: int) -> None:
    if any(panel.template_name == template_name for panel in panels):
        return  # ready() may run twice in tests; one panel per template
    panels.append(Panel(template_name, context, order))
    panels.sort(key=lambda panel: panel.order)


def register_ticket_panel(template_name: str, context=None, order: int = 100) -> None:
    _register(_ticket_panels, template_name, context, order)


def register_customer_panel(template_name: str, context=None, order: int = 100) -> None:
    _register(_customer_panels, template_name, context, order)


def ticket_panels() -> list[Panel]:
    return list(_ticket_panels)


def customer_panels() -> list[Panel]:
    return list(_customer_panels)
