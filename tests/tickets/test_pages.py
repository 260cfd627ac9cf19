"""Agent pages under /app/, through the Django test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_inbound.base import NormalizedMessage
from channels_inbound.services import message_ingest
from customers import identities
from tests.factories import CustomerFactory, EntryFactory, IdentityFactory, TicketFactory, UserFactory
from tickets import services
from tickets.models import Tag, Ticket, TimelineEntry


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture
def tickets(people, api_channel):
    mine = TicketFactory(subject="Printer on fire", customer=people.customer, team=people.team_a, status="open",
                         assignee=people.agent_a, origin_channel=api_channel.channel, last_message_at=ago(1))
    unassigned = TicketFactory(subject="Refund please", customer=people.customer, team=people.team_a, status="new",
                               origin_channel=api_channel.channel, last_message_at=ago(2))
    solved = TicketFactory(subject="Thanks a lot", customer=people.customer, team=people.team_a, status="solved",
                           last_message_at=ago(3))
    other_team = TicketFactory(subject="Secret of team B", customer=people.customer, team=people.team_b, status="open",
                               last_message_at=ago(4))
    EntryFactory(ticket=mine, channel=api_channel.channel, identity=people.customer.identities.get(),
                 author_customer=people.customer, text="Smoke everywhere")
    EntryFactory(ticket=other_team, text="Team B only words", author_customer=people.customer)
    return {"mine": mine, "unassigned": unassigned, "solved": solved, "other_team": other_team}


def page(client, user, url: str, **params):
    client.force_login(user)
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- access ---------------------------------------------------------------------------------------

def test_the_workspace_sends_anonymous_visitors_to_sign_in(client):
    response = client.get("/app/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/app/"


def test_root_redirects_to_the_workspace(client):
    assert client.get("/")["Location"] == "/app/"


@pytest.mark.parametrize("url", ["/app/", "/app/tickets/{ticket}/", "/app/customers/{customer}/"])
def test_a_signed_in_user_without_a_staff_role_cannot_see_the_workspace(people, tickets, client, url):
    client.force_login(UserFactory(username="portal_customer"))

    response = client.get(url.format(ticket=tickets["mine"].pk, customer=people.customer.pk))

    assert response.status_code == 404
    assert b"Printer on fire" not in response.content


# --- ticket list ----------------------------------------------------------------------------------

def test_the_list_shows_only_open_tickets_the_agent_may_see(people, tickets, client):
    html = page(client, people.agent_a, "/app/")

    assert "Printer on fire" in html and "Refund please" in html
    assert "Thanks a lot" not in html
    assert "Secret of team B" not in html


def test_a_supervisor_sees_every_teams_tickets(people, tickets, client):
    html = page(client, people.supervisor, "/app/")

    assert "Secret of team B" in html


@pytest.mark.parametrize(("view", "shown", "hidden"), [
    ("mine", ["Printer on fire"], ["Refund please", "Thanks a lot"]),
    ("unassigned", ["Refund please"], ["Printer on fire", "Thanks a lot"]),
    ("solved", ["Thanks a lot"], ["Printer on fire", "Refund please"]),
    ("all", ["Printer on fire", "Refund please", "Thanks a lot"], ["Secret of team B"]),
])
def test_view_tabs_filter_the_list(people, tickets, client, view, shown, hidden):
    html = page(client, people.agent_a, "/app/", view=view)

    assert all(s in html for s in shown)
    assert not any(h in html for h in hidden)
    assert f'data-view="{view}" aria-current="page"' in html


def test_search_finds_message_text_and_ticket_numbers(people, tickets, client):
    assert "Printer on fire" in page(client, people.agent_a, "/app/", q="smoke")
    assert "Refund please" not in page(client, people.agent_a, "/app/", q="smoke")
    by_number = page(client, people.agent_a, "/app/", view="all", q=f"#{tickets['solved'].pk}")
    assert "Thanks a lot" in by_number and "Printer on fire" not in by_number


def test_search_does_not_leak_another_teams_ticket(people, tickets, client):
    html = page(client, people.agent_a, "/app/", view="all", q="Team B only")

    assert "Secret of team B" not in html


def test_the_list_fragment_is_the_partial_only(people, tickets, client):
    html = page(client, people.agent_a, "/app/", view="mine", fragment="list")

    assert "<html" not in html and "<nav class=\"tabs\"" not in html
    assert "Printer on fire" in html
    assert "Refund please" not in html


def test_the_list_costs_the_same_queries_for_few_and_many_tickets(people, api_channel, client):
    vip, _ = Tag.objects.get_or_create(name="vip")

    def add(n: int) -> None:
        for i in range(n):
            ticket = TicketFactory(customer=CustomerFactory(), team=people.team_a, assignee=people.agent_a, status="open",
                                   origin_channel=api_channel.channel, last_message_at=ago(i))
            ticket.tags.add(vip)

    def count() -> int:
        client.force_login(people.agent_a)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/app/").status_code == 200
        return len(queries)

    add(3)
    few = count()
    add(27)
    many = count()

    assert few == many


# --- ticket page ----------------------------------------------------------------------------------

def test_the_ticket_page_shows_the_timeline(people, tickets, client):
    ticket = tickets["mine"]
    services.ticket_add_note(ticket=ticket, text="Call the fire brigade", by=people.agent_a)

    html = page(client, people.agent_a, f"/app/tickets/{ticket.pk}/")

    assert "Printer on fire" in html
    assert "Smoke everywhere" in html
    assert "Call the fire brigade" in html
    assert "anna@example.pl" in html


def test_the_timeline_fragment_is_the_partial_only(people, tickets, client):
    html = page(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/", fragment="timeline")

    assert "<html" not in html and "data-composer" not in html
    assert "Smoke everywhere" in html


def test_another_teams_ticket_page_is_404(people, tickets, client):
    client.force_login(people.agent_a)

    assert client.get(f"/app/tickets/{tickets['other_team'].pk}/").status_code == 404
    assert client.get(f"/app/tickets/{tickets['other_team'].pk}/", {"fragment": "timeline"}).status_code == 404
    assert client.get("/app/tickets/999999/").status_code == 404


def test_customer_html_in_a_message_is_sanitized(people, api_channel, client):
    entry = message_ingest(channel=api_channel.channel, message=NormalizedMessage(
        provider_message_id="m-html", sender=[identities.claim("email", "anna@example.pl")],
        html='<p onclick="steal()">Hi <b>there</b><script>alert(1)</script></p>',
    ))
    services.ticket_add_note(ticket=entry.ticket, text="<script>alert(2)</script>", by=people.agent_a)

    html = page(client, people.agent_a, f"/app/tickets/{entry.ticket_id}/", fragment="timeline")

    assert "<script>" not in html
    assert "onclick" not in html
    assert "Hi <b>there</b>" in html
    assert "&lt;script&gt;alert(2)" in html


def test_the_reply_form_queues_a_reply_and_redirects_to_the_ticket(people, tickets, client, api_channel):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "reply", "text": "The fire brigade is coming"})

    assert response.status_code == 302
    assert response["Location"] == f"/app/tickets/{ticket.pk}/"
    reply = ticket.entries.get(direction=TimelineEntry.Direction.OUTBOUND)
    assert (reply.text, reply.delivery_status, reply.channel, reply.author_user) == (
        "The fire brigade is coming", "queued", api_channel.channel, people.agent_a,
    )


def test_the_note_form_adds_an_internal_note(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "note", "text": "Customer is upset"})

    assert response.status_code == 302
    note = ticket.entries.get(kind=TimelineEntry.Kind.NOTE)
    assert (note.text, note.delivery_status) == ("Customer is upset", "")


def test_the_composer_takes_an_attachment(people, tickets, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ticket = tickets["mine"]
    client.force_login(people.agent_a)

    client.post(f"/app/tickets/{ticket.pk}/reply/", {
        "kind": "note", "text": "log attached", "attachment": SimpleUploadedFile("log.txt", b"line one\n"),
    })

    attachment = ticket.entries.get(kind=TimelineEntry.Kind.NOTE).attachments.get()
    assert (attachment.filename, attachment.content_type, attachment.size) == ("log.txt", "text/plain", 9)


def test_an_empty_message_is_refused_with_a_message(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)
    before = ticket.entries.count()

    response = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "reply", "text": ""})

    assert response.status_code == 302
    assert flash(response)
    assert ticket.entries.count() == before


def test_replying_on_a_closed_ticket_shows_the_reason(people, tickets, client):
    ticket = tickets["mine"]
    services.ticket_set_status(ticket=ticket, status="closed", by=people.supervisor)
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "reply", "text": "Hello?"}, follow=True)

    assert "The ticket is closed." in response.content.decode()
    assert not ticket.entries.filter(direction="out").exists()


def test_posting_to_another_teams_ticket_is_404(people, tickets, client):
    ticket = tickets["other_team"]
    client.force_login(people.agent_a)

    assert client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "note", "text": "x"}).status_code == 404
    assert client.post(f"/app/tickets/{ticket.pk}/update/", {"status": "solved", "priority": "normal"}).status_code == 404
    assert not ticket.entries.filter(kind="note").exists()
    assert Ticket.objects.get(pk=ticket.pk).status == "open"


def test_the_update_form_changes_the_status(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/update/", {
        "status": "pending", "priority": "normal", "team": people.team_a.pk, "assignee": people.agent_a.pk,
    })

    assert response.status_code == 302
    assert response["Location"] == f"/app/tickets/{ticket.pk}/"
    assert Ticket.objects.get(pk=ticket.pk).status == "pending"
    assert flash(response) == ["Ticket updated."]


def test_the_update_form_refuses_an_agent_setting_priority_and_changes_nothing(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/update/", {
        "status": "pending", "priority": "urgent", "team": people.team_a.pk, "assignee": people.agent_a.pk,
    })

    assert response.status_code == 302
    assert flash(response) == ["Only supervisors set priorities."]
    after = Ticket.objects.get(pk=ticket.pk)
    assert (after.status, after.priority) == ("open", "normal")


def test_a_supervisor_reassigns_through_the_update_form(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.supervisor)

    client.post(f"/app/tickets/{ticket.pk}/update/", {
        "status": "open", "priority": "high", "team": people.team_b.pk, "assignee": people.agent_b.pk,
    })

    after = Ticket.objects.get(pk=ticket.pk)
    assert (after.priority, after.team, after.assignee) == ("high", people.team_b, people.agent_b)


def test_an_invalid_update_form_changes_nothing(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/update/", {"status": "exploded", "priority": "normal"})

    assert response.status_code == 302
    assert flash(response)
    assert Ticket.objects.get(pk=ticket.pk).status == "open"


# --- customer page --------------------------------------------------------------------------------

def test_the_customer_page_shows_identities_and_visible_history_across_tickets(people, tickets, client, api_channel):
    IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    services.ticket_add_note(ticket=tickets["unassigned"], text="Refund approved", by=people.agent_a)

    html = page(client, people.agent_a, f"/app/customers/{people.customer.pk}/")

    assert "Anna Kowalska" in html
    assert "anna@example.pl" in html and "+48601234567" in html
    assert "Smoke everywhere" in html and "Refund approved" in html
    assert "Printer on fire" in html
    assert "Team B only words" not in html
    assert "Secret of team B" not in html


def test_an_unknown_customer_page_is_404(people, client):
    client.force_login(people.agent_a)

    assert client.get("/app/customers/999999/").status_code == 404


def test_the_composer_offers_reply_or_note_as_radio_buttons_and_assignees_by_name(people, tickets, client):
    html = page(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/")
    assert html.count('type="radio" name="kind"') == 2
    assert people.agent_a.display_name in html


def test_agent_pages_send_a_strict_content_security_policy(people, tickets, client):
    client.force_login(people.agent_a)
    listing = client.get("/app/")
    ticket = client.get(f"/app/tickets/{tickets['mine'].pk}/")
    with_images = client.get(f"/app/tickets/{tickets['mine'].pk}/", {"images": "1"})

    policy = listing["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert "img-src 'self' data:;" in ticket["Content-Security-Policy"]
    assert "https:" in with_images["Content-Security-Policy"]
    assert 'onchange="' not in listing.content.decode()
    assert "Content-Security-Policy" in Client().get("/accounts/login/")
