"""The widget's menu in Chromium, with the keyboard only: email the transcript, then confirm the
email with the code that arrives on the test's SMTP server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_webchat_widget import shop, wait_for  # noqa: F401 (the fixture)
from tickets.models import TimelineEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]


def plain(mail) -> str:
    return mail.message().get_body(preferencelist=("plain",)).get_content()


def test_transcript_and_email_confirmation_from_the_widget_menu_by_keyboard(asgi_server, people, shop, page,  # noqa: F811
                                                                            smtp_server):
    site, channel = shop
    channel.settings = {**channel.settings, "email_offline_replies": False}
    channel.save(update_fields=["settings"])
    smtp_server.email_channel(people.team_a)
    page.goto(site.url)
    page.get_by_role("button", name="Open chat").click()
    box = page.get_by_role("textbox", name="Write a message…")
    box.fill("Can I get this in writing?")
    box.press("Enter")
    wait_for(lambda: TimelineEntry.objects.filter(text="Can I get this in writing?").exists())

    menu_button = page.get_by_role("button", name="More options")
    expect(menu_button).to_have_attribute("aria-haspopup", "menu")
    menu_button.focus()
    page.keyboard.press("Enter")
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    transcript_item = page.get_by_role("menuitem", name="Email me this conversation")
    expect(transcript_item).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Confirm my email")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu_button).to_be_focused()
    expect(page.get_by_role("menu")).to_be_hidden()

    page.keyboard.press("ArrowDown")  # opens the menu on its first item
    expect(transcript_item).to_be_focused()
    page.keyboard.press("Enter")
    email = page.get_by_role("textbox", name="Email")
    expect(email).to_be_focused()
    page.keyboard.type("Not an address")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).not_to_be_empty()
    email.fill("")
    page.keyboard.type("reader@example.net")
    page.keyboard.press("Enter")
    expect(page.get_by_role("log")).to_contain_text("We are sending the conversation to reader@example.net.")
    expect(box).to_be_focused()
    wait_for(lambda: len(smtp_server.messages) == 1)
    assert "Can I get this in writing?" in plain(smtp_server.messages[0])

    menu_button.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Email")).to_have_value("reader@example.net")  # prefilled
    page.keyboard.press("Enter")
    code_box = page.get_by_role("textbox", name="Code from the email")
    expect(code_box).to_be_focused()
    wait_for(lambda: len(smtp_server.messages) == 2)
    code = re.search(r"\b(\d{6})\b", plain(smtp_server.messages[1])).group(1)
    page.keyboard.type(code)
    page.keyboard.press("Enter")

    expect(page.get_by_role("log")).to_contain_text("Your email reader@example.net is confirmed.")
    menu_button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("menuitem")).to_have_count(1)  # nothing left to confirm
