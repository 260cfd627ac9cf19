"""The knowledge base in a real browser: an admin edits an article with the live preview and
publishes it, the public help center shows it, and an agent inserts it into a reply from the
ticket sidebar (the SMS ticket gets the article's short text)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from channels_inbound.models import Channel
from tests.factories import EntryFactory, TicketFactory
from tests.knowledge.factories import ArticleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pass-1234")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/")


def test_admin_publishes_help_center_shows_agent_inserts(asgi_server, people, page):
    article = ArticleFactory(slug="return-an-item", title="Return an item", body="Draft text.", status="draft")
    people.customer.language = "en"
    people.customer.save()
    sms = Channel.objects.create(kind="sms", name="SMS", settings={"demo": True})
    ticket = TicketFactory(subject="Broken kettle", customer=people.customer, team=people.team_a, origin_channel=sms)
    EntryFactory(ticket=ticket, text="My kettle is broken, can I send it back?")

    assert page.goto("/help/en/articles/return-an-item/").status == 404

    sign_in(page, "admin")
    page.goto(f"/app/admin/kb/{article.pk}/")
    page.get_by_label("Main body (Markdown) (EN)").fill("Send it back **within 30 days** with the receipt.")
    expect(page.locator("#preview-body strong")).to_have_text("within 30 days")  # server-rendered live preview
    page.get_by_label("Rich body for email, portal and help center (Markdown; empty: the main body) (EN)").fill("## Returns by post")
    expect(page.locator("#preview-rich_body h2")).to_have_text("Returns by post")  # its own preview, not the main body's
    expect(page.locator("#preview-body strong")).to_have_text("within 30 days")
    page.get_by_label("Rich body for email, portal and help center (Markdown; empty: the main body) (EN)").fill("")
    page.get_by_label("Short text for SMS, WhatsApp and chat (empty: the main body) (EN)").fill("Return within 30 days: reply RETURN.")
    page.get_by_role("button", name="Save and publish").click()
    expect(page.locator(".messages")).to_contain_text("Saved as version 2")

    page.goto("/help/en/")
    page.get_by_role("link", name="Return an item").first.click()
    expect(page.locator(".article-body strong")).to_have_text("within 30 days")
    page.get_by_label("Search the help center").fill("receipt")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".help-results mark")).to_have_text("receipt")

    page.context.clear_cookies()
    sign_in(page, "agent_a")
    page.goto(f"/app/tickets/{ticket.pk}/")
    panel = page.locator(".kb-panel")
    panel.get_by_label("Search articles").fill("receipt")
    item = panel.locator('#kb-results li[data-kb-article="return-an-item"]')
    expect(item.locator("mark").first).to_be_visible()  # htmx swapped in the search results
    composer = page.locator("[data-composer-text]")
    composer.fill("Hello! ")
    item.get_by_role("button", name="Insert text").click()
    expect(composer).to_have_value("Hello! Return within 30 days: reply RETURN.")
    item.get_by_role("button", name="Insert link").click()
    expect(composer).to_have_value(
        "Hello! Return within 30 days: reply RETURN.http://127.0.0.1:8000/help/en/articles/return-an-item/"
    )


def test_help_center_works_without_javascript(asgi_server, chromium, people):
    import asyncio

    from knowledge.models import Feedback
    from tests.knowledge.factories import CategoryFactory

    orders = CategoryFactory(slug="orders", names={"en": "Orders", "ru": "Заказы"})
    ArticleFactory(slug="return-an-item", category=orders, translations={
        "en": {"title": "Return an item", "body": "Send it back **within 30 days** with the receipt."},
        "ru": {"title": "Вернуть товар", "body": "Отправьте товар обратно в течение 30 дней с чеком."},
    })
    asyncio._set_running_loop(chromium.loop)
    context = chromium.browser.new_context(base_url=asgi_server.url, locale="en-US", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/help/en/")
        page.get_by_role("link", name="Orders").first.click()
        expect(page.get_by_role("link", name="Return an item")).to_be_visible()
        page.get_by_label("Search the help center").fill("receipts")
        page.get_by_role("button", name="Search").click()
        expect(page.locator(".help-results mark").first).to_have_text("receipt")
        page.get_by_role("link", name="Return an item").first.click()
        page.get_by_role("article").get_by_role("link", name="RU").click()  # "Also in:" of the article
        expect(page.locator("h1")).to_have_text("Вернуть товар")
        page.get_by_label("Да").check()
        page.get_by_role("textbox").fill("Понятно, спасибо")
        page.get_by_role("button", name="Отправить").click()
        expect(page.get_by_role("status")).to_be_visible()
    finally:
        context.close()
        asyncio._set_running_loop(None)
    assert list(Feedback.objects.values_list("language", "helpful", "comment")) == [("ru", True, "Понятно, спасибо")]
