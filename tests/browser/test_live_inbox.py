"""The live inbox in a real browser: an agent signs in, and new tickets and new messages appear on
the open page without a reload (static/js/live.js re-fetching fragments on websocket hints).

The page runs on the real ASGI server; Celery is eager there, so each posted message is processed
inside the inbound request, after its commit.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

# Set on the window object: it survives anything but a reload or a navigation.
SAME_PAGE = "window.ocSamePage"


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pass-1234")
    page.get_by_role("button", name="Sign in").click()


def wait_until_live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate(f"{SAME_PAGE} = true")


def still_same_page(page) -> bool:
    return page.evaluate(f"{SAME_PAGE} === true")


def test_new_ticket_and_new_message_appear_without_reload(asgi_server, people, api_channel, page):
    sign_in(page, "agent_a")
    page.wait_for_url("**/app/")
    expect(page.locator("#ticket-list")).to_contain_text("No tickets here")
    wait_until_live(page)

    response = asgi_server.post_inbound(api_channel, {**message("m-1", "My blender is broken"), "thread": "order-7"})

    assert response.status_code == 202
    row = page.locator("#ticket-list tr", has_text="My blender is broken")
    expect(row).to_be_visible()
    expect(row).to_contain_text("Anna Kowalska")
    assert still_same_page(page)

    row.get_by_role("link", name="My blender is broken").click()
    page.wait_for_url("**/app/tickets/*/*")  # the pane opens in place; the address follows
    expect(page.locator("#timeline")).to_contain_text("My blender is broken")
    wait_until_live(page)

    asgi_server.post_inbound(api_channel, {**message("m-2", "It smells of smoke now"), "thread": "order-7"})

    expect(page.locator("#timeline")).to_contain_text("It smells of smoke now")
    assert still_same_page(page)


def test_other_teams_ticket_does_not_appear_for_an_agent(asgi_server, people, api_channel, page):
    from tests.factories import make_channel

    channel_b, generated = make_channel(name="Team B API", default_team=people.team_b)
    sign_in(page, "agent_a")
    page.wait_for_url("**/app/")
    wait_until_live(page)

    asgi_server.post_json(f"/api/v1/channels/{channel_b.key}/inbound", message("b-1", "Only for team B"),
                          headers={"Authorization": f"Bearer {generated['secret']}"})
    asgi_server.post_inbound(api_channel, message("a-1", "For team A"))

    expect(page.locator("#ticket-list")).to_contain_text("For team A")
    expect(page.locator("#ticket-list")).not_to_contain_text("Only for team B")
    assert still_same_page(page)
