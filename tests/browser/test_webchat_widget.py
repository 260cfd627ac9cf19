"""The chat widget end to end in Chromium: a shop's page on another origin embeds the script tag, a
visitor chats, an agent in a second browser context sees it live and answers, the visitor sees the
answer, reloads, and still has the conversation."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.browser.test_live_inbox import sign_in, wait_until_live
from tests.factories import make_channel
from tickets.models import TimelineEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

# The shop's own CSS is hostile on purpose: the widget lives in a shadow root and must not care.
SHOP_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<style>button{{display:none!important}} *{{font-size:40px!important;color:red!important}}</style></head>
<body><h1>Blenders</h1><p>Our best blenders.</p>
<script src="{script}" async></script></body></html>"""


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class ShopSite:
    """A static page on its own port: another origin than the ASGI server's."""

    def __init__(self):
        self.html = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                page = site.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop(asgi_server, people) -> Iterator[tuple[ShopSite, object]]:
    site = ShopSite()
    channel, _secrets = make_channel(
        kind="webchat", name="Shop chat", default_team=people.team_a,
        settings_data={"allowed_origins": [site.url], "greeting": "Hi! Ask us anything.", "team_name": "Blender team"},
    )
    site.html = SHOP_PAGE.format(script=f"{asgi_server.url}/widget/{channel.key}.js")
    try:
        yield site, channel
    finally:
        site.stop()


def test_a_visitor_chats_with_an_agent_across_origins(chromium, asgi_server, people, shop, page):
    site, _channel = shop
    visitor_context = chromium.browser.new_context(locale="en-US")
    try:
        visitor = visitor_context.new_page()
        visitor.set_default_timeout(15_000)
        visitor.goto(site.url)
        launcher = visitor.get_by_role("button", name="Open chat")
        expect(launcher).to_be_visible()  # despite the shop's `button{display:none!important}`
        launcher.click()
        dialog = visitor.get_by_role("dialog", name="Chat with us")
        expect(dialog).to_contain_text("Hi! Ask us anything.")
        expect(dialog).to_contain_text("Blender team")
        box = visitor.get_by_role("textbox", name="Write a message…")
        expect(box).to_be_focused()

        sign_in(page, "agent_a")
        page.wait_for_url("**/app/")
        wait_until_live(page)

        box.fill("Does the X200 crush ice? 🧊")
        box.press("Enter")

        row = page.locator("#ticket-list tr", has_text="Does the X200 crush ice?")
        expect(row).to_be_visible()
        row.get_by_role("link").first.click()
        page.wait_for_url(re.compile(r"/app/tickets/\d+/"))  # the workspace keeps ?view=
        expect(page.locator("#timeline")).to_contain_text("Does the X200 crush ice? 🧊")
        # The panel's own socket has joined its groups once it is open.
        expect(page.locator("[data-webchat-typing][data-state=live]")).to_be_attached()
        visitor.wait_for_timeout(2100)  # the widget sends a typing hint at most every 2 s

        box.press_sequentially("And smoothies?", delay=20)
        expect(page.get_by_text("The visitor is typing…")).to_be_visible()
        page.get_by_label("Message").press_sequentially("Yes", delay=20)
        expect(visitor.get_by_text("Blender team typing…")).to_be_visible()
        page.get_by_label("Message").fill("Yes, it does, even frozen fruit.")
        page.get_by_role("button", name="Send").click()

        log = visitor.get_by_role("log")
        expect(log).to_contain_text("Yes, it does, even frozen fruit.")
        # The widget is open and visible: the reply is marked read, and the agent's page shows it.
        reply = TimelineEntry.objects.get(text="Yes, it does, even frozen fruit.")
        wait_for(lambda: TimelineEntry.objects.get(pk=reply.pk).delivery_status == TimelineEntry.Delivery.READ)

        visitor.reload()  # the panel stays open across pages: its state is in local storage
        log = visitor.get_by_role("log")
        expect(log).to_contain_text("Does the X200 crush ice? 🧊")
        expect(log).to_contain_text("Yes, it does, even frozen fruit.")
    finally:
        visitor_context.close()


def test_required_pre_chat_form_then_a_survey_rated_inline(asgi_server, people, shop, page):
    from channels_inbound.webchat import services
    from customers.models import Identity

    site, channel = shop
    channel.settings = {**channel.settings, "prechat": {"name": "required", "email": "required", "phone": "off"}}
    channel.save(update_fields=["settings"])
    answers = []
    handlers = list(services.survey_answer_handlers)
    services.survey_answer_handlers.append(lambda **kw: answers.append(kw))
    visitor = page
    try:
        visitor.goto(site.url)
        visitor.get_by_role("button", name="Open chat").click()
        expect(visitor.get_by_role("textbox", name="Write a message…")).to_be_hidden()
        expect(visitor.get_by_label("Phone")).to_have_count(0)
        visitor.get_by_label("Your name").fill("Ola")
        visitor.get_by_role("button", name="Start chat").click()
        expect(visitor.get_by_label("Email")).to_be_focused()  # the browser's own check: still required
        visitor.get_by_label("Email").fill("ola@example.pl")
        visitor.get_by_role("button", name="Start chat").click()
        box = visitor.get_by_role("textbox", name="Write a message…")
        expect(box).to_be_focused()
        box.fill("Hello, I am Ola")
        box.press("Enter")
        expect(visitor.get_by_role("log")).to_contain_text("Hello, I am Ola")
        wait_for(lambda: Identity.objects.filter(kind="email", value="ola@example.pl", verified=False).exists())
        visitor_id = Identity.objects.get(kind="visitor").value

        assert services.survey_prompt_send(channel=channel, visitor_id=visitor_id, survey_id="csat-1", question="How did we do?")
        visitor.get_by_role("button", name="Rate us 4").click()

        expect(visitor.get_by_role("log")).to_contain_text("Thank you!")
        assert [(a["survey_id"], a["rating"]) for a in answers] == [("csat-1", 4)]
    finally:
        services.survey_answer_handlers[:] = handlers  # the survey service's own handler stays


def test_where_websockets_are_blocked_the_widget_polls_over_http(asgi_server, people, shop, page):
    from tickets.services import ticket_reply

    site, _channel = shop
    page.add_init_script("window.WebSocket = undefined;")
    page.goto(site.url)
    page.get_by_role("button", name="Open chat").click()
    box = page.get_by_role("textbox", name="Write a message…")
    box.fill("Sent without a websocket")
    box.press("Enter")

    wait_for(lambda: TimelineEntry.objects.filter(text="Sent without a websocket").exists())
    entry = TimelineEntry.objects.get(text="Sent without a websocket")
    ticket_reply(ticket=entry.ticket, by=people.agent_a, text="Answered by polling.")

    expect(page.get_by_role("log")).to_contain_text("Answered by polling.")


def test_a_refused_message_says_why_and_can_be_sent_again(asgi_server, people, shop, page, settings):
    site, _channel = shop
    settings.WEBCHAT_RATE_VISITOR = 1  # the server runs in this process and reads it per message
    page.goto(site.url)
    page.get_by_role("button", name="Open chat").click()
    box = page.get_by_role("textbox", name="Write a message…")
    box.fill("One")
    box.press("Enter")
    expect(page.get_by_role("log")).to_contain_text("You")
    wait_for(lambda: TimelineEntry.objects.filter(text="One").exists())
    box.fill("Two")
    box.press("Enter")

    refused = page.get_by_role("button", name=re.compile("You are sending messages too fast; wait a moment."))
    expect(refused).to_have_attribute("title", "Not sent. Tap to retry.")
    settings.WEBCHAT_RATE_VISITOR = 100
    refused.click()

    wait_for(lambda: TimelineEntry.objects.filter(text="Two").exists())
    expect(page.get_by_role("log").get_by_role("button")).to_have_count(0)
    assert TimelineEntry.objects.filter(text="Two").count() == 1
