"""Panels registered by other apps show in the ticket and customer sidebars (tickets/panels.py)."""

from __future__ import annotations

import pytest

from tests.factories import TicketFactory
from tickets import panels


@pytest.fixture
def registered(monkeypatch, tmp_path, settings):
    monkeypatch.setattr(panels, "_ticket_panels", [])
    monkeypatch.setattr(panels, "_customer_panels", [])
    (tmp_path / "t.html").write_text("<p>T:{{ object.subject }}:{{ extra }}</p>")
    (tmp_path / "c.html").write_text("<p>C:{{ object.display_name }}</p>")
    (tmp_path / "hidden.html").write_text("<p>never</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    panels.register_ticket_panel("t.html", context=lambda request, ticket: {"extra": request.user.username}, order=2)
    panels.register_ticket_panel("t.html")  # a second registration of one template is ignored
    panels.register_ticket_panel("hidden.html", context=lambda request, ticket: None, order=1)
    panels.register_customer_panel("c.html")


def test_registered_panels_render_with_their_context_and_hidden_ones_do_not(registered, people, client):
    ticket = TicketFactory(subject="Broken <b>kettle</b>", customer=people.customer, team=people.team_a)
    client.force_login(people.agent_a)
    page = client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert page.count("<p>T:Broken &lt;b&gt;kettle&lt;/b&gt;:" + people.agent_a.username + "</p>") == 1
    assert "never" not in page
    assert f"<p>C:{people.customer.display_name}</p>" in page
    customer_page = client.get(f"/app/customers/{people.customer.pk}/").content.decode()
    assert f"<p>C:{people.customer.display_name}</p>" in customer_page
