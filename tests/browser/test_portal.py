"""The customer portal in a real browser: a customer asks for a magic link (caught on the test's
SMTP server) and follows it, sees the ticket an agent answered, replies while the agent's open page
shows the reply live, and rates the solved ticket from the survey email."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_live_inbox import sign_in, still_same_page, wait_until_live
from tests.factories import EntryFactory, TicketFactory
from tickets.models import CsatRating
from tickets.services import ticket_set_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

URL_RE = re.compile(r"https?://\S+")


def wait_for_mail(smtp_server, count: int):
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(smtp_server.messages) < count:
        assert time.monotonic() < deadline, "no mail arrived"
        time.sleep(0.05)
    return smtp_server.messages[count - 1].message().get_body(("plain",)).get_content()


def local(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.fixture
def answered_ticket(people, smtp_server):
    channel = smtp_server.email_channel(people.team_a, name="Support", address="support@example.test")
    ticket = TicketFactory(customer=people.customer, subject="Kettle leaks", origin_channel=channel, team=people.team_a,
                           assignee=people.agent_a, status="open")
    identity = people.customer.identities.get()
    EntryFactory(ticket=ticket, channel=channel, identity=identity, author_customer=people.customer,
                 text="My new kettle leaks from the bottom.", delivery_status="received")
    EntryFactory(ticket=ticket, channel=channel, identity=identity, direction="out", author_user=people.agent_a,
                 text="Sorry about that! Could you send a photo?", delivery_status="sent")
    EntryFactory(ticket=ticket, kind="note", direction="", author_user=people.agent_a, text="Batch 7 is faulty")
    return ticket


def test_customer_signs_in_by_link_replies_live_to_the_agent_and_rates(
    asgi_server, chromium, people, answered_ticket, smtp_server, page,
):
    ticket = answered_ticket
    page.goto("/portal/")
    page.get_by_label("Email address or phone number").fill("anna@example.pl")
    page.get_by_role("button", name="Send me a sign-in link").click()
    expect(page.locator("#signin-sent")).to_contain_text("anna@example.pl")

    link = URL_RE.search(wait_for_mail(smtp_server, 1)).group(0)
    page.goto(local(link))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/portal/")
    row = page.locator("#requests li", has_text="Kettle leaks")
    expect(row).to_contain_text("We're working on it")

    agent_context = chromium.browser.new_context(base_url=asgi_server.url, locale="en-US")
    try:
        agent = agent_context.new_page()
        agent.set_default_timeout(TIMEOUT_MS)
        sign_in(agent, "agent_a")
        agent.wait_for_url("**/app/")
        agent.goto(f"/app/tickets/{ticket.pk}/")
        wait_until_live(agent)

        row.get_by_role("link").click()
        expect(page.locator("#timeline")).to_contain_text("Could you send a photo?")
        expect(page.locator("#timeline")).not_to_contain_text("Batch 7")
        page.get_by_label("Your message").fill("Here it is, the bottom seam is wet.")
        page.get_by_label("Attach a file").set_input_files(
            files=[{"name": "seam.txt", "mimeType": "text/plain", "buffer": b"photo description"}])
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.locator("#timeline")).to_contain_text("the bottom seam is wet")

        expect(agent.locator("#timeline")).to_contain_text("Here it is, the bottom seam is wet.")
        expect(agent.locator("#timeline")).to_contain_text("seam.txt")
        assert still_same_page(agent)
    finally:
        agent_context.close()

    ticket_set_status(ticket=ticket, status="solved", by=people.agent_a)
    survey = wait_for_mail(smtp_server, 2)
    five = next(url for url in URL_RE.findall(survey) if url.endswith("score=5"))
    page.goto(local(five))
    expect(page.get_by_label("5 – Great")).to_be_checked()
    page.get_by_label("Comment (optional)").fill("Fast and friendly")
    page.get_by_role("button", name="Send my rating").click()
    expect(page.locator("#rating")).to_contain_text("Your rating: 5/5")

    rating = CsatRating.objects.get()
    assert (rating.ticket_id, rating.score, rating.comment) == (ticket.pk, 5, "Fast and friendly")
    page.goto(f"/portal/tickets/{ticket.number}/")
    expect(page.locator("#ticket-status")).to_have_text("Solved")
    expect(page.locator("#rating")).to_contain_text("Your rating: 5/5")


def test_the_portal_fits_a_phone_screen_in_the_browsers_language(asgi_server, chromium, people, page):
    # A second context (the `page` fixture keeps Playwright's loop set for this test): a Polish phone.
    context = chromium.browser.new_context(base_url=asgi_server.url, locale="pl-PL", viewport={"width": 375, "height": 700})
    try:
        phone = context.new_page()
        phone.goto("/portal/sign-in/")
        expect(phone.locator("html")).to_have_attribute("lang", "pl")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        assert phone.get_by_role("button").last.bounding_box()["height"] >= 44  # a finger-sized target
    finally:
        context.close()
