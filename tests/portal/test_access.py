"""Customer A never reads, replies to, rates or learns of customer B's ticket: by number, status
link, survey link or attachment URL. Merges grant access to both profiles' tickets; un-merge takes
it back. (The websocket path is in test_socket.py.)"""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from customers.services import customer_merge, customer_unmerge
from tests.factories import EntryFactory
from tests.portal.conftest import conversation
from tickets.attachments import attachment_store
from tickets.models import CallbackRequest, CsatRating, Ticket, TimelineEntry
from tickets.portal import links

pytestmark = pytest.mark.django_db


@pytest.fixture
def anna_client(client, people, anna, boris, sign_in):
    sign_in(client, "anna@example.pl")
    return client


def test_the_list_shows_only_the_customers_own_tickets(anna_client, anna, boris):
    page = anna_client.get("/portal/").content.decode()
    assert "Anna&#x27;s parcel" in page
    assert "Boris" not in page and f"#{boris.ticket.number}<" not in page


@pytest.mark.parametrize("suffix", ["", "?fragment=timeline"])
def test_anothers_ticket_by_number_is_not_found(anna_client, boris, suffix):
    assert anna_client.get(f"/portal/tickets/{boris.ticket.number}/{suffix}").status_code == 404


@pytest.mark.parametrize(("action", "data"), [
    ("reply", {"text": "let me in"}),
    ("reopen", {}),
    ("callback", {"phone": "+48601234567", "preferred_at": "2030-01-01T10:00"}),
    ("rate", {"score": "1"}),
])
def test_no_action_on_anothers_ticket_and_nothing_changes(anna_client, boris, action, data):
    Ticket.objects.filter(pk=boris.ticket.pk).update(status="solved", solved_at=timezone.now())
    before = TimelineEntry.objects.filter(ticket=boris.ticket).count()

    response = anna_client.post(f"/portal/tickets/{boris.ticket.number}/{action}/", data)

    assert response.status_code == 404
    assert TimelineEntry.objects.filter(ticket=boris.ticket).count() == before
    assert not CsatRating.objects.exists() and not CallbackRequest.objects.exists()
    assert Ticket.objects.get(pk=boris.ticket.pk).status == "solved"


def test_a_ticket_number_that_does_not_exist_looks_the_same_as_anothers(anna_client, boris):
    missing = anna_client.get("/portal/tickets/999999/")
    theirs = anna_client.get(f"/portal/tickets/{boris.ticket.number}/")
    assert missing.status_code == theirs.status_code == 404
    assert missing.content == theirs.content


def test_the_timeline_shows_public_messages_only(anna_client, anna):
    page = anna_client.get(f"/portal/tickets/{anna.ticket.number}/").content.decode()
    assert anna.inbound.text.replace("'", "&#x27;") in page
    assert anna.reply.text.replace("'", "&#x27;") in page
    assert "SECRET NOTE" not in page and "internal.txt" not in page
    assert "priority" not in page.lower()


def test_attachments_are_checked_on_every_request(anna_client, anna, boris):
    own = anna_client.get(f"/portal/attachments/{anna.public_file.public_id}/")
    assert own.status_code == 200 and b"".join(own.streaming_content) == b"receipt of Anna's parcel"
    assert own["Content-Disposition"].startswith("attachment")
    assert anna_client.get(f"/portal/attachments/{boris.public_file.public_id}/").status_code == 404
    assert anna_client.get(f"/portal/attachments/{anna.note_file.public_id}/").status_code == 404

    Ticket.objects.filter(pk=anna.ticket.pk).update(customer=boris.ticket.customer)  # moved away since
    assert anna_client.get(f"/portal/attachments/{anna.public_file.public_id}/").status_code == 404


def test_attachments_need_a_portal_session(people, anna):
    staff = Client()
    staff.force_login(people.supervisor)
    assert staff.get(f"/portal/attachments/{anna.public_file.public_id}/").status_code == 302
    assert Client().get(f"/portal/attachments/{anna.public_file.public_id}/").status_code == 302


# --- status links -------------------------------------------------------------------------------


def test_a_status_link_shows_that_one_ticket_without_signing_in(anna, boris):
    token = links.status_token(anna.ticket)
    response = Client().get(f"/portal/status/{token}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Anna&#x27;s parcel" in page and "SECRET NOTE" not in page and "Boris" not in page
    assert Client().get(f"/portal/status/{token}/attachments/{anna.public_file.public_id}/").status_code == 200
    assert Client().get(f"/portal/status/{token}/attachments/{boris.public_file.public_id}/").status_code == 404
    assert Client().get(f"/portal/status/{token}/attachments/{anna.note_file.public_id}/").status_code == 404
    # The link grants nothing beyond that page.
    link_client = Client()
    link_client.get(f"/portal/status/{token}/")
    assert link_client.get(f"/portal/tickets/{anna.ticket.number}/").status_code == 302


def test_a_tampered_status_link_or_one_for_another_purpose_is_not_found(anna, boris):
    token = links.status_token(anna.ticket)
    body, _sep, signature = token.rpartition(":")
    forged = f"{body}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"
    assert Client().get(f"/portal/status/{forged}/").status_code == 404
    csat_token = links.csat_url(anna.ticket).rstrip("/").rsplit("/", 1)[1]
    assert Client().get(f"/portal/status/{csat_token}/").status_code == 404
    assert Client().get(f"/portal/rate/{token}/").status_code == 404


def test_a_status_link_stops_working_when_the_ticket_is_no_longer_that_customers(anna, boris):
    token = links.status_token(anna.ticket)
    Ticket.objects.filter(pk=anna.ticket.pk).update(customer=boris.ticket.customer)
    assert Client().get(f"/portal/status/{token}/").status_code == 404


def test_an_expired_status_link_is_not_found(anna, settings):
    token = links.status_token(anna.ticket)
    settings.PORTAL_STATUS_LINK_DAYS = -1  # every link is older than that
    assert Client().get(f"/portal/status/{token}/").status_code == 404


def test_a_survey_link_rates_only_its_own_ticket(anna, boris):
    Ticket.objects.filter(pk__in=[anna.ticket.pk, boris.ticket.pk]).update(status="solved", solved_at=timezone.now())
    token = links.csat_url(anna.ticket).rstrip("/").rsplit("/", 1)[1]
    Client().post(f"/portal/rate/{token}/", {"score": "5"})
    assert list(CsatRating.objects.values_list("ticket_id", "score")) == [(anna.ticket.pk, 5)]


# --- merges -------------------------------------------------------------------------------------


def test_a_merged_customer_sees_both_profiles_tickets_and_an_unmerge_takes_it_back(
    people, anna, boris, sign_in, django_capture_on_commit_callbacks,
):
    as_anna, as_boris = Client(), Client()
    sign_in(as_anna, "anna@example.pl")
    sign_in(as_boris, "boris@example.ru")
    boris_link = links.status_token(boris.ticket)

    merge = customer_merge(into=people.customer, other=people.other_customer, by=people.supervisor)

    for who in (as_anna, as_boris):  # the absorbed profile's session stands for the survivor
        page = who.get("/portal/").content.decode()
        assert "Anna&#x27;s parcel" in page and "Boris&#x27;s invoice" in page
        assert who.get(f"/portal/tickets/{boris.ticket.number}/").status_code == 200
        assert who.get(f"/portal/attachments/{boris.public_file.public_id}/").status_code == 200
    assert Client().get(f"/portal/status/{boris_link}/").status_code == 200

    customer_unmerge(merge=merge, by=people.supervisor)

    assert as_anna.get(f"/portal/tickets/{boris.ticket.number}/").status_code == 404
    assert as_anna.get(f"/portal/attachments/{boris.public_file.public_id}/").status_code == 404
    assert "Boris" not in as_anna.get("/portal/").content.decode()
    assert as_boris.get(f"/portal/tickets/{anna.ticket.number}/").status_code == 404
    assert as_boris.get(f"/portal/tickets/{boris.ticket.number}/").status_code == 200
    assert Client().get(f"/portal/status/{boris_link}/").status_code == 200


def queries_for(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_and_a_timeline_cost_the_same_queries_however_long(anna_client, people, anna, email_channel):
    list_queries = queries_for(anna_client, "/portal/")
    detail_url = f"/portal/tickets/{anna.ticket.number}/"
    detail_queries = queries_for(anna_client, detail_url)

    for n in range(5):
        more = conversation(people.customer, channel=email_channel, subject=f"More {n}")
        EntryFactory(ticket=anna.ticket, channel=email_channel, identity=more.inbound.identity, text=f"again {n}")
        attachment_store(entry=anna.reply, filename=f"f{n}.txt", data=b"x")

    assert queries_for(anna_client, "/portal/") == list_queries
    assert queries_for(anna_client, detail_url) == detail_queries
