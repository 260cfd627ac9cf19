"""What a signed-in customer does with their tickets: reply with attachments, reopen, request a
callback, open a new request, and the language, CSRF and notification rules around it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from channels_inbound.email.outbound import build_email
from omnicenter import events
from tests.layers import Listener
from tickets.models import CallbackRequest, Deflection, Ticket, TimelineEntry
from tickets.portal import links
from tickets.services import reply_target, ticket_reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def anna_client(client, people, anna, sign_in):
    sign_in(client, "anna@example.pl")
    return client


def test_a_reply_with_an_attachment_joins_the_timeline_and_the_assigned_agent_is_told(
    anna_client, people, anna, django_capture_on_commit_callbacks,
):
    with Listener(events.agent_group(people.agent_a.pk)) as listener:
        with django_capture_on_commit_callbacks(execute=True):
            response = anna_client.post(f"/portal/tickets/{anna.ticket.number}/reply/", {
                "text": "Here is the photo", "attachment": SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32),
            })
        event = listener.receive()["event"]

    assert response.status_code == 302
    entry = TimelineEntry.objects.filter(ticket=anna.ticket).latest("pk")
    assert (entry.kind, entry.direction, entry.text, entry.data) == ("message", "in", "Here is the photo", {"via": "portal"})
    assert (entry.author_customer, entry.identity.value, entry.channel) == (people.customer, "anna@example.pl", None)
    assert [a.filename for a in entry.attachments.all()] == ["photo.png"]
    assert event == {"type": "timeline.appended", "ticket": anna.ticket.pk, "version": Ticket.objects.get(pk=anna.ticket.pk).version}
    assert "Here is the photo" in anna_client.get(f"/portal/tickets/{anna.ticket.number}/").content.decode()
    # The agent's next reply still goes out by email to the customer.
    assert reply_target(Ticket.objects.get(pk=anna.ticket.pk)) == (anna.inbound.channel, anna.inbound.identity)


def test_an_empty_reply_is_refused_and_changes_nothing(anna_client, anna):
    before = TimelineEntry.objects.count()
    response = anna_client.post(f"/portal/tickets/{anna.ticket.number}/reply/", {"text": "  "}, follow=True)
    assert "Write a message or attach a file." in response.content.decode()
    assert TimelineEntry.objects.count() == before


def test_plain_language_status(anna_client, anna):
    for status, words in [("new", "We&#x27;re working on it"), ("pending", "Waiting for your reply"), ("solved", "Solved")]:
        Ticket.objects.filter(pk=anna.ticket.pk).update(status=status, solved_at=timezone.now())
        assert words in anna_client.get("/portal/").content.decode()
        assert words in anna_client.get(f"/portal/tickets/{anna.ticket.number}/").content.decode()


def test_a_solved_ticket_reopens_within_the_period_and_not_after(anna_client, anna, settings):
    settings.PORTAL_REOPEN_DAYS = 3
    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now() - timedelta(days=2))
    anna_client.post(f"/portal/tickets/{anna.ticket.number}/reopen/")
    ticket = Ticket.objects.get(pk=anna.ticket.pk)
    assert (ticket.status, ticket.solved_at) == ("open", None)
    assert ticket.entries.filter(kind="event", data__action="reopened", data__via="portal").exists()

    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now() - timedelta(days=4))
    response = anna_client.post(f"/portal/tickets/{anna.ticket.number}/reopen/", follow=True)
    assert "too long ago" in response.content.decode()
    response = anna_client.post(f"/portal/tickets/{anna.ticket.number}/reply/", {"text": "hello?"}, follow=True)
    assert "too long ago" in response.content.decode()
    assert Ticket.objects.get(pk=anna.ticket.pk).status == "solved"
    assert not TimelineEntry.objects.filter(text="hello?").exists()


def test_a_reply_on_a_recently_solved_ticket_reopens_it(anna_client, anna):
    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now())
    anna_client.post(f"/portal/tickets/{anna.ticket.number}/reply/", {"text": "Still broken"})
    assert Ticket.objects.get(pk=anna.ticket.pk).status == "open"


def test_a_callback_request_is_stored_on_the_ticket_for_the_workspace(anna_client, anna):
    when = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    anna_client.post(f"/portal/tickets/{anna.ticket.number}/callback/",
                     {"phone": "+48 601 234 567", "preferred_at": when, "note": "after 5pm"})

    [callback] = anna.ticket.callbacks.filter(done_at__isnull=True)
    assert (callback.phone, callback.note) == ("+48601234567", "after 5pm")
    assert anna.ticket.entries.filter(kind="event", data__action="callback_requested").exists()
    # The internal event is not shown to the customer.
    assert "callback_requested" not in anna_client.get(f"/portal/tickets/{anna.ticket.number}/").content.decode()


@pytest.mark.parametrize(("phone", "when"), [("not a phone", 1), ("+48601234567", -2), ("+48601234567", 90)])
def test_a_bad_callback_request_is_refused(anna_client, anna, phone, when):
    at = (timezone.now() + timedelta(days=when)).strftime("%Y-%m-%dT%H:%M")
    response = anna_client.post(f"/portal/tickets/{anna.ticket.number}/callback/", {"phone": phone, "preferred_at": at}, follow=True)
    assert response.status_code == 200
    assert not CallbackRequest.objects.exists()


def test_a_new_request_opens_a_ticket_routed_like_the_customers_email(anna_client, people, anna, email_channel):
    response = anna_client.post("/portal/new/", {"subject": "Warranty", "text": "My kettle leaks",
                                                 "attachment": SimpleUploadedFile("kettle.txt", b"leak")})
    ticket = Ticket.objects.exclude(pk=anna.ticket.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/portal/tickets/{ticket.number}/"
    assert (ticket.subject, ticket.customer, ticket.origin_channel, ticket.team) == (
        "Warranty", people.customer, email_channel, people.team_a)
    assert ticket.entries.get().attachments.get().filename == "kettle.txt"
    assert reply_target(ticket)[0] == email_channel


def test_a_new_request_needs_a_description(anna_client, anna):
    response = anna_client.post("/portal/new/", {"subject": "Empty", "text": ""})
    assert response.status_code == 200
    assert Ticket.objects.count() == 1


def test_without_matching_articles_there_are_no_suggestions_and_deflections_are_counted(anna_client, anna):
    assert anna_client.get("/portal/new/suggestions/", {"text": "kettle leaks"}).content.decode().strip() == ""
    response = anna_client.post("/portal/new/deflected/", {"article": "kb-42", "query": "kettle leaks"})
    assert response.status_code == 302
    [deflection] = Deflection.objects.all()
    assert (deflection.article_ref, deflection.query, deflection.customer_id) == ("kb-42", "kettle leaks", anna.ticket.customer_id)


def test_the_home_page_links_the_help_center(anna_client):
    assert 'href="/help/"' in anna_client.get("/portal/").content.decode()


# --- language -------------------------------------------------------------------------------------


def test_the_language_follows_the_browser_then_the_profile_and_can_be_switched(client, people, anna, sign_in):
    assert '<html lang="ru">' in client.get("/portal/sign-in/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    people.customer.language = "pl"
    people.customer.save(update_fields=["language"])
    sign_in(client, "anna@example.pl")
    assert '<html lang="pl">' in client.get("/portal/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    response = client.post("/portal/language/", {"language": "ru", "next": "/portal/"})
    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert '<html lang="ru">' in client.get("/portal/").content.decode()
    people.customer.refresh_from_db()
    assert people.customer.language == "ru"


def test_the_language_switch_does_not_redirect_elsewhere(client):
    response = client.post("/portal/language/", {"language": "pl", "next": "https://evil.example/"})
    assert response["Location"] == "/portal/"


# --- CSRF -----------------------------------------------------------------------------------------


def test_every_portal_form_needs_the_csrf_token(people, anna, smtp_server):
    strict = Client(enforce_csrf_checks=True)
    for url in ["/portal/sign-in/", "/portal/sign-in/link/whatever/", "/portal/sign-out/", "/portal/language/",
                f"/portal/tickets/{anna.ticket.number}/reply/", "/portal/new/",
                f"/portal/rate/{links.csat_url(anna.ticket).rstrip('/').rsplit('/', 1)[1]}/"]:
        assert strict.post(url, {"address": "anna@example.pl", "text": "x", "score": "5"}).status_code == 403, url


# --- the status link in every outgoing notification ----------------------------------------------


def test_outgoing_email_carries_a_status_link_that_opens_that_ticket(people, anna, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        entry = ticket_reply(ticket=anna.ticket, by=people.agent_a, text="We found it.")
    message = build_email(entry).message()
    text = message.get_payload()[0].get_payload(decode=True).decode() if message.is_multipart() else message.get_payload()
    [url] = [word for word in text.split() if "/portal/status/" in word]
    assert url.startswith("http://127.0.0.1:8000/portal/status/")

    response = Client().get("/" + url.split("://", 1)[1].split("/", 1)[1])
    assert response.status_code == 200 and "We found it." in response.content.decode()


def test_callbacks_due_lists_open_requests_an_agent_may_see_and_done_ones_leave(anna_client, people, anna, boris):
    from tickets.portal.selectors import callbacks_due
    from tickets.portal.services import callback_mark_done
    from tickets.selectors import tickets_visible_to

    soon = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    later = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    anna_client.post(f"/portal/tickets/{anna.ticket.number}/callback/", {"phone": "+48601234567", "preferred_at": later})
    anna_client.post(f"/portal/tickets/{anna.ticket.number}/callback/", {"phone": "+48601234568", "preferred_at": soon})

    due = callbacks_due(tickets_visible_to(people.agent_a))
    assert [c.phone for c in due] == ["+48601234568", "+48601234567"]
    assert [c.phone for c in callbacks_due(tickets_visible_to(people.agent_a), until=timezone.now() + timedelta(days=1))] == ["+48601234568"]
    assert list(callbacks_due(tickets_visible_to(people.agent_b))) == []

    callback_mark_done(callback=due[0], by=people.agent_a)
    callback_mark_done(callback=due[0], by=people.agent_a)
    assert [c.phone for c in callbacks_due(tickets_visible_to(people.agent_a))] == ["+48601234567"]
    assert anna.ticket.entries.filter(kind="event", data__action="callback_done").count() == 1


def test_signing_in_from_a_status_page_returns_to_that_ticket(client, people, anna, smtp_server, django_capture_on_commit_callbacks):
    from tests.portal.conftest import link_from

    target = f"/portal/tickets/{anna.ticket.number}/"
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/portal/sign-in/", {"address": "anna@example.pl", "next": target})
    link = link_from(smtp_server.messages[-1].message().get_body(("plain",)).get_content())

    response = client.post("/" + link.split("://", 1)[1].split("/", 1)[1])

    assert response["Location"] == target
    client.post("/portal/sign-in/", {"address": "x@example.pl", "next": "https://evil.example/"})
    assert client.session["portal_next"] == ""


# --- the knowledge base and the catalog on the portal ----------------------------------------------


def test_suggestions_come_from_published_public_articles_in_the_customers_language(anna_client, anna):
    from knowledge.models import Article
    from tests.knowledge.factories import ArticleFactory

    ArticleFactory(slug="leaking-kettle", title="Leaking kettle", body="What to do when your kettle leaks.")
    ArticleFactory(slug="kettle-internal", title="Kettle returns (staff)", body="Internal kettle process.",
                   visibility=Article.Visibility.INTERNAL)
    ArticleFactory(slug="kettle-draft", title="Kettle draft", body="A kettle draft.", status=Article.Status.DRAFT)
    ArticleFactory(slug="czajnik", language="pl", title="Cieknący czajnik", body="Czajnik cieknie.")

    page = anna_client.get("/portal/new/suggestions/", {"text": "my kettle leaks"}).content.decode()

    assert "Leaking kettle" in page and 'href="/help/en/articles/leaking-kettle/"' in page
    assert 'name="article" value="leaking-kettle"' in page
    assert "staff" not in page and "draft" not in page and "czajnik" not in page.lower()
    assert anna_client.get("/portal/new/suggestions/", {"text": "toaster"}).content.decode().strip() == ""


def test_the_home_page_lists_the_customers_own_products_only(anna_client, anna, people):
    from tests.catalog.factories import OwnedProductFactory, ProductFactory

    OwnedProductFactory(customer=anna.ticket.customer, product=ProductFactory(name="Kettle KX-1"), reference="SN-1")
    OwnedProductFactory(customer=people.other_customer, product=ProductFactory(name="Toaster T-9"))

    page = anna_client.get("/portal/").content.decode()

    assert "Kettle KX-1" in page and "SN-1" in page
    assert "Toaster T-9" not in page
