"""The workspace in real browsers, several contexts (agents) at once, on the real ASGI server with
Redis. The six scenarios of issue 6:

1. a message posted through the `api` channel appears in two agents' inboxes without a reload;
2. agent A types, and agent B sees "A is typing a reply";
3. A's reply goes out, and its delivery status updates live;
4. a supervisor reassigns the ticket, and it moves from A's Mine view to B's, live;
5. a mention notifies B;
6. keyboard navigation works;
7. bulk merge from the list, by keyboard (a mix of customers refused; the survivor picked in a
   dialog), and both lists follow live.

With OC_SCREENSHOTS=1 the tests also save the main screens to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS
from tests.conftest import message
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot(page, name: str) -> None:
    if os.environ.get("OC_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture
def browser_page(chromium, asgi_server):
    """Open a new browser context (its own cookies: one person) per call."""
    asyncio._set_running_loop(chromium.loop)
    contexts = []

    def open_page(username: str, url: str = "/app/"):
        context = chromium.browser.new_context(base_url=asgi_server.url, locale="en-US", viewport={"width": 1440, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page.goto("/accounts/login/?next=" + url)
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("pass-1234")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**" + url.split("?")[0] + "*")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        page.evaluate("window.ocSamePage = true")
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
        asyncio._set_running_loop(None)


def same_page(page) -> bool:
    return page.evaluate("window.ocSamePage === true")


def row(page, text: str):
    return page.locator("#ticket-list tr[data-ticket-id]", has_text=text)


def settle(page) -> None:
    """Let htmx finish processing a pane it just swapped in (its settle step) before a key acts on it."""
    expect(page.locator(".htmx-request, .htmx-settling, .htmx-swapping")).to_have_count(0)
    page.wait_for_timeout(100)


def open_ticket(page, subject: str) -> None:
    row(page, subject).get_by_role("link").click()
    expect(page.locator("[data-pane] h1")).to_contain_text(subject)
    page.wait_for_timeout(300)  # the socket announces the watch after the swap settles


def test_1_a_new_message_appears_in_two_inboxes_without_reload(asgi_server, people, api_channel, browser_page):
    a = browser_page("agent_a")
    supervisor = browser_page("supervisor")

    assert asgi_server.post_inbound(api_channel, message("m-1", "My blender is broken")).status_code == 202

    for page in (a, supervisor):
        expect(row(page, "My blender is broken")).to_be_visible()
        expect(page.locator('[data-count="open"]')).to_have_text("1")
        assert same_page(page)
    expect(row(a, "My blender is broken")).to_contain_text("Anna Kowalska")
    assert "unread" in row(a, "My blender is broken").get_attribute("class")
    screenshot(a, "inbox")


def test_2_b_sees_a_typing(asgi_server, people, api_channel, browser_page):
    people.agent_a.first_name, people.agent_a.last_name = "Anna", "Agent"
    people.agent_a.save()
    asgi_server.post_inbound(api_channel, message("m-1", "Where is my parcel"))
    b = browser_page("supervisor")
    a = browser_page("agent_a")
    open_ticket(b, "Where is my parcel")
    open_ticket(a, "Where is my parcel")

    expect(b.locator("[data-collision]")).to_contain_text("Anna Agent is viewing")
    a.locator("[data-composer-text]").press_sequentially("Hello, it is on its way", delay=20)

    expect(b.locator("[data-collision]")).to_contain_text("Anna Agent is typing a reply")
    screenshot(b, "collision")


def test_3_a_reply_goes_out_and_its_delivery_status_updates_live(asgi_server, people, api_channel, browser_page, http_stub):
    from channels_inbound.delivery import message_status_apply
    from tickets.models import TimelineEntry

    api_channel.channel.settings = {**(api_channel.channel.settings or {}), "outbound_url": http_stub.url("/outbound")}
    api_channel.channel.save()
    asgi_server.post_inbound(api_channel, message("m-1", "Is the shop open on Sunday"))
    a = browser_page("agent_a")
    open_ticket(a, "Is the shop open on Sunday")

    a.locator("[data-composer-text]").fill("Yes, from 10 to 16.")
    a.locator("[data-send]").click()

    reply = a.locator(".entry.dir-out", has_text="Yes, from 10 to 16.")
    expect(reply.locator("[data-delivery]")).to_have_attribute("data-delivery", "sent")
    assert http_stub.requests, "the reply was not sent to the channel's outbound URL"
    entry = TimelineEntry.objects.get(direction="out", text="Yes, from 10 to 16.")
    message_status_apply(entry_id=entry.pk, status="delivered")  # the provider's delivery report

    expect(reply.locator("[data-delivery]")).to_have_attribute("data-delivery", "delivered")
    assert same_page(a)
    screenshot(a, "conversation")


def test_4_a_supervisor_reassigns_and_the_ticket_moves_between_mine_views(asgi_server, people, api_channel, browser_page):
    from tickets import services

    people.team_a.members.add(people.agent_b)
    asgi_server.post_inbound(api_channel, message("m-1", "Reassign me please"))
    ticket = Ticket.objects.get(subject="Reassign me please")
    services.ticket_assign(ticket=ticket, agent=people.agent_a, by=people.supervisor)
    a = browser_page("agent_a", "/app/?view=mine")
    b = browser_page("agent_b", "/app/?view=mine")
    expect(row(a, "Reassign me please")).to_be_visible()
    expect(b.locator("#ticket-list")).not_to_contain_text("Reassign me please")

    sup = browser_page("supervisor", "/app/?view=open")
    row(sup, "Reassign me please").locator("[data-pick]").check()
    sup.locator("[data-bulk-value]").fill(str(people.agent_b.pk))
    sup.locator("[data-bulk] button[type=submit]").click()

    expect(row(b, "Reassign me please")).to_be_visible()
    expect(a.locator("#ticket-list")).not_to_contain_text("Reassign me please")
    expect(b.locator("#notice")).to_contain_text(f"Ticket #{ticket.pk} was assigned to you")
    assert same_page(a) and same_page(b)
    sup.goto("/app/board/")
    expect(sup.locator("[data-team]").first).to_contain_text("Support A")
    screenshot(sup, "board")


def test_5_a_mention_notifies_b(asgi_server, people, api_channel, browser_page):
    asgi_server.post_inbound(api_channel, message("m-1", "Strange invoice"))
    ticket = Ticket.objects.get(subject="Strange invoice")
    b = browser_page("supervisor")
    a = browser_page("agent_a")
    open_ticket(a, "Strange invoice")

    a.get_by_label("Internal note").check()
    a.locator("[data-composer-text]").fill("@supervisor can you check the VAT?")
    a.locator("[data-send]").click()
    expect(a.locator(".entry.kind-note")).to_contain_text("can you check the VAT?")

    expect(b.locator("#notice")).to_contain_text(f"You were mentioned on #{ticket.pk}")
    expect(b.locator('[data-count="mentions"]')).to_have_text("1")
    b.locator('[data-view="mentions"]').click()
    expect(row(b, "Strange invoice")).to_be_visible()


def test_6_keyboard_navigation(asgi_server, people, api_channel, browser_page):
    from tickets.models import CannedResponse

    CannedResponse.objects.create(title="Thanks", body="Thank you, {{customer.first_name}}! Ticket #{{ticket.number}}.")
    for i, text in enumerate(["First question", "Second question", "Third question"]):
        asgi_server.post_inbound(api_channel, message(f"m-{i}", text, email=f"p{i}@example.org", name=f"Person {i}"))
    a = browser_page("agent_a")
    navigations = []
    a.on("framenavigated", lambda frame: navigations.append(frame.url))
    expect(a.locator("#ticket-list tr[data-ticket-id]")).to_have_count(3)
    first, second = (a.locator("#ticket-list tr[data-ticket-id]").nth(i).get_attribute("data-ticket-id") for i in (0, 1))

    a.keyboard.press("j")
    expect(a.locator("[data-pane]")).to_have_attribute("data-ticket", first)
    a.keyboard.press("j")
    expect(a.locator("[data-pane]")).to_have_attribute("data-ticket", second)
    a.keyboard.press("k")
    expect(a.locator("[data-pane]")).to_have_attribute("data-ticket", first)
    settle(a)

    a.keyboard.press("a")  # assign to me
    expect(a.locator("[data-pane] .meta")).to_contain_text(people.agent_a.display_name)
    settle(a)
    a.keyboard.press("n")  # note
    expect(a.get_by_label("Internal note")).to_be_checked()
    expect(a.locator("[data-composer-text]")).to_be_focused()
    a.keyboard.press("Escape")
    a.keyboard.press("r")  # reply
    expect(a.get_by_label("Reply to customer")).to_be_checked()
    a.keyboard.type("/than")
    expect(a.locator("[data-canned-results]")).to_contain_text("Thanks")
    a.keyboard.press("Enter")
    expect(a.locator("[data-composer-text]")).to_have_value(f"Thank you, Person! Ticket #{first}.")
    a.keyboard.press("Escape")
    a.keyboard.press("?")
    expect(a.locator("#keyboard-help")).to_be_visible()
    screenshot(a, "keyboard-help")
    a.keyboard.press("Escape")
    a.keyboard.press("e")  # solve
    expect(a.locator("[data-pane] .meta")).to_contain_text("Solved")
    assert same_page(a), navigations


def test_7_bulk_merge_with_the_keyboard_and_the_lists_update_live(asgi_server, people, api_channel, browser_page):
    """Three tickets of Anna (different threads) and one of Boris. The supervisor selects with x,
    picks Merge, keeps the second ticket in the dialog; agent A's list follows live."""
    for i, text in enumerate(["Blender broke", "Blender smells", "Blender invoice"]):
        payload = {**message(f"m-{i}", text), "thread": f"thread-{i}"}
        assert asgi_server.post_inbound(api_channel, payload).status_code == 202
    asgi_server.post_inbound(api_channel, message("m-9", "Boris asks", email="boris@example.ru", name="Boris"))
    broke, smells, invoice = (Ticket.objects.get(subject=s) for s in ("Blender broke", "Blender smells", "Blender invoice"))
    a = browser_page("agent_a")
    sup = browser_page("supervisor")
    expect(sup.locator("#ticket-list tr[data-ticket-id]")).to_have_count(4)

    # A customer mix is refused with a clear error, and nothing changes.
    row(sup, "Boris asks").locator("[data-pick]").check()
    row(sup, "Blender broke").locator("[data-pick]").check()
    sup.locator("[data-bulk-action]").select_option("merge")
    sup.locator("[data-bulk] button[type=submit]").click()
    expect(sup.locator("[data-merge-dialog] [data-merge-error]")).to_contain_text("Only tickets of the same customer")
    sup.keyboard.press("Escape")
    expect(sup.locator("[data-merge-dialog]")).not_to_be_visible()
    row(sup, "Boris asks").locator("[data-pick]").uncheck()
    row(sup, "Blender broke").locator("[data-pick]").uncheck()

    # Keyboard only: j moves (and opens), x selects; the oldest ticket is preselected as the survivor.
    expect(sup.locator("[data-bulk]")).to_be_hidden()
    sup.keyboard.press("Escape")  # leave the checkbox: letters are shortcuts again
    for subject in ("Blender broke", "Blender smells", "Blender invoice"):
        sup.keyboard.press("j")
        expect(sup.locator("[data-pane] h1")).to_contain_text(subject)
        settle(sup)
        sup.keyboard.press("x")
        expect(row(sup, subject).locator("[data-pick]")).to_be_checked()
    expect(sup.locator("[data-bulk-count]")).to_have_text("3")
    sup.locator("[data-bulk-action]").select_option("merge")
    expect(sup.locator("[data-bulk-value]")).to_be_hidden()  # merge takes no value
    sup.locator("[data-bulk] button[type=submit]").press("Enter")

    dialog = sup.locator("[data-merge-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-merge-into]:checked")).to_have_value(str(broke.pk))
    expect(dialog.locator("[data-merge-into]:checked")).to_be_focused()
    screenshot(sup, "bulk-merge")
    sup.keyboard.press("ArrowDown")  # keep "Blender smells" instead
    expect(dialog.locator("[data-merge-into]:checked")).to_have_value(str(smells.pk))
    sup.keyboard.press("Tab")
    expect(dialog.locator("[data-merge-confirm]")).to_be_focused()
    sup.keyboard.press("Enter")

    expect(dialog).not_to_be_visible()
    expect(sup.locator("#notice")).to_contain_text(f"2 tickets were merged into #{smells.pk}")
    for page in (sup, a):
        expect(row(page, "Blender smells")).to_be_visible()
        expect(page.locator("#ticket-list")).not_to_contain_text("Blender broke")
        expect(page.locator("#ticket-list")).not_to_contain_text("Blender invoice")
        expect(row(page, "Boris asks")).to_be_visible()
        assert same_page(page)
    expect(sup.locator("[data-bulk]")).to_be_hidden()
    assert set(Ticket.objects.filter(merged_into=smells).values_list("pk", flat=True)) == {broke.pk, invoice.pk}
    assert Ticket.objects.get(subject="Boris asks").merged_into is None
