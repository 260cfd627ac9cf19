"""`manage.py demo_data`: a multilingual demo contact center, loaded once, fast, with usable logins."""

from __future__ import annotations

import io
import json
import re
import shlex
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.db.models import Count

from channels_inbound.models import Channel
from customers.models import Customer, Identity, MergeSuggestion
from omnicenter.models import User
from tests.factories import UserFactory
from tickets.models import Team, Ticket, TimelineEntry

LOGIN_ROW = re.compile(r"^\s+(?P<username>\w+)\s+(?P<role>agent|supervisor|admin)\s+(?P<teams>.+?)\s{2,}(?P<password>\S+)\s*$")


def run_demo_data() -> str:
    out = io.StringIO()
    call_command("demo_data", stdout=out)
    return out.getvalue()


def logins(output: str) -> dict[str, dict[str, str]]:
    return {m["username"]: m.groupdict() for m in map(LOGIN_ROW.match, output.splitlines()) if m}


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (User, Team, Channel, Customer, Identity, Ticket, TimelineEntry, MergeSuggestion)
    }


@pytest.fixture
def demo_output(db, django_assert_max_num_queries) -> str:
    # Bulk inserts: the query count does not grow with the number of customers or messages.
    with django_assert_max_num_queries(300):  # bulk inserts; knowledge and catalog add ~60
        return run_demo_data()


def test_given_empty_database_when_loaded_then_multilingual_customers_with_several_identities(demo_output):
    customers = Customer.objects.count()
    assert customers >= 50
    assert set(Customer.objects.values_list("language", flat=True)) == {"en", "ru", "pl"}
    assert Identity.objects.count() / customers >= 2
    assert Identity.objects.filter(kind="phone", value__startswith="+48").exists()
    assert Identity.objects.filter(kind="phone", value__startswith="+7").exists()
    assert Identity.objects.filter(verified=False).exists()
    assert Customer.objects.filter(display_name="Katarzyna Kowalska", organization__isnull=True).exists()
    assert Customer.objects.filter(organization__domain__isnull=False).exists()
    assert MergeSuggestion.objects.filter(status="open").count() >= 1


def test_given_empty_database_when_loaded_then_tickets_mix_channels_statuses_and_deliveries(demo_output):
    assert Ticket.objects.count() >= 200
    assert set(Ticket.objects.values_list("status", flat=True)) == set(Ticket.Status.values)
    mixed = Ticket.objects.annotate(kinds=Count("entries__channel__kind", distinct=True)).filter(kinds__gte=2)
    assert mixed.count() >= 20
    kinds = set(Channel.objects.values_list("kind", flat=True))
    assert {"api", "email", "sms", "whatsapp", "telegram", "webchat", "voice", "messenger"} <= kinds
    outbound = TimelineEntry.objects.filter(direction="out", kind="message")
    assert {"sent", "delivered", "read", "failed"} <= set(outbound.values_list("delivery_status", flat=True))
    assert outbound.filter(delivery_status="failed").exclude(delivery_error="").exists()
    assert not TimelineEntry.objects.filter(direction="in").exclude(delivery_status="received").exists()
    answered = Ticket.objects.filter(entries__direction="out").distinct()
    assert not answered.filter(first_response_at__isnull=True).exists()
    assert not Ticket.objects.filter(status="closed", closed_at__isnull=True).exists()
    # History spread over the last two months, not all stamped "now".
    oldest, newest = Ticket.objects.order_by("created_at").first(), Ticket.objects.order_by("-created_at").first()
    assert (newest.created_at - oldest.created_at).days >= 30


def test_given_loaded_demo_when_run_again_then_nothing_changes_and_logins_are_printed(demo_output, django_assert_max_num_queries):
    before = counts()
    with django_assert_max_num_queries(12):  # a constant few: users, channel, and one check per app
        second = run_demo_data()
    assert counts() == before
    assert "already loaded" in second
    assert set(logins(second)) == {"admin", "supervisor", "anna", "piotr", "dmitry", "olga", "james"}
    assert logins(second) == logins(demo_output)


def test_given_printed_logins_when_agents_sign_in_then_they_see_their_teams_tickets(demo_output, client):
    rows = logins(demo_output)
    assert rows["admin"]["role"] == "admin"
    assert User.objects.get(username="admin").is_superuser
    agents = [name for name, row in rows.items() if row["role"] == "agent"]
    assert len(agents) >= 4
    assert {row["teams"] for name, row in rows.items() if name in agents} == {"Sales", "Support"}
    for username in agents:
        assert client.login(username=username, password=rows[username]["password"])
        response = client.get("/app/")
        assert response.status_code == 200
        shown = list(response.context["rows"])
        assert shown
        assert all(ticket.team.name == rows[username]["teams"] or ticket.assignee.username == username for ticket in shown)
        client.logout()


def test_given_printed_curl_example_when_sent_then_the_api_channel_accepts_it(demo_output, client, django_capture_on_commit_callbacks):
    curl = shlex.split(next(line for line in demo_output.splitlines() if line.strip().startswith("curl ")))
    url = curl[curl.index("POST") + 1]
    headers = dict(curl[i + 1].split(": ", 1) for i, arg in enumerate(curl) if arg == "-H")
    payload = json.loads(curl[curl.index("-d") + 1])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(urlsplit(url).path, data=json.dumps(payload), content_type="application/json",
                               HTTP_AUTHORIZATION=headers["Authorization"])
    assert response.status_code == 202
    ticket = Ticket.objects.filter(origin_channel__kind="api").order_by("-pk").first()
    assert ticket.entries.get(direction="in").text == payload["text"]
    assert ticket.customer.identities.filter(value=payload["from"]["email"]).exists()


def test_given_an_existing_admin_when_loaded_then_their_password_is_kept(db, client):
    UserFactory(username="admin", role="admin")
    output = run_demo_data()
    assert logins(output)["admin"]["password"] == "(unchanged)"
    assert client.login(username="admin", password="pass-1234")
    assert Customer.objects.count() >= 50
