"""The agent workspace loads the vendored Twilio Voice SDK, mints an access token and sets up the
device. No real call is possible without Twilio: the device's connection to Twilio fails here,
which the page shows as an error state, after the token and the device are in place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.test_live_inbox import sign_in
from tests.factories import make_channel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]

SDK = "twilio-voice-sdk-2.18.5.min.js"


def test_the_vendored_sdk_is_the_recorded_file():
    vendor = Path(settings.BASE_DIR) / "static" / "vendor"
    sums = dict(line.split()[::-1] for line in (vendor / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert hashlib.sha256((vendor / SDK).read_bytes()).hexdigest() == sums[f"static/vendor/{SDK}"]


def test_an_agent_page_mints_a_token_and_sets_up_the_device(asgi_server, people, page):
    from django.core.cache import cache

    from channels_inbound.twilio import twiml

    cache.clear()
    make_channel(kind="voice", name="Phone", default_team=people.team_a, settings_data={
        "account_sid": "AC" + "a" * 32, "auth_token": "t" * 32, "phone_number": "+48221234567",
        "api_key_sid": "SK" + "b" * 32, "api_key_secret": "s" * 32, "twiml_app_sid": "AP" + "c" * 32,
    })
    token_answers = []
    page.on("response", lambda r: token_answers.append(r.status) if r.url.endswith("/app/voice/token/") else None)
    sign_in(page, "agent_a")
    page.wait_for_url("**/app/")
    phone = page.locator("#oc-phone")
    expect(phone).to_have_attribute("data-identity", f"agent-{people.agent_a.pk}")
    expect(phone).to_have_attribute("data-sdk-version", "2.18.5")
    assert page.evaluate("typeof window.ocVoiceDevice.register") == "function"
    assert page.evaluate("window.ocVoiceDevice.constructor === window.Twilio.Device")
    assert token_answers and token_answers[0] == 200
    # The agent's browser now counts as ready: callers of team A ring it.
    assert twiml.ready_agents(people.team_a.pk) == [people.agent_a.pk]


def test_without_a_voice_channel_nothing_is_loaded(asgi_server, people, page):
    sign_in(page, "agent_a")
    page.wait_for_url("**/app/")
    page.wait_for_load_state("networkidle")
    assert page.locator("#oc-phone").count() == 0
    assert page.evaluate("typeof window.Twilio") == "undefined"


def test_the_sms_composer_counts_segments(asgi_server, people, page):
    from channels_inbound.base import NormalizedMessage
    from channels_inbound.services import message_ingest
    from customers import identities

    channel, _generated = make_channel(kind="sms", name="SMS", default_team=people.team_a, settings_data={
        "account_sid": "AC" + "a" * 32, "auth_token": "t" * 32, "phone_number": "+48221234567"})
    from django.db import transaction

    with transaction.atomic():
        entry = message_ingest(channel=channel, message=NormalizedMessage(
            provider_message_id="SM1", sender=[identities.claim("phone", "+48601234567")],
            text="When will my parcel be delivered?"))
    sign_in(page, "agent_a")
    page.wait_for_url("**/app/")
    page.goto(f"/app/tickets/{entry.ticket_id}/")
    # The workspace composer counts segments for an SMS target (GSM-7: 160, then 153 per part;
    # UCS-2: 70, then 67), which is what Twilio bills.
    counter = page.locator("[data-sms-count]")
    box = page.locator("[data-composer-text]")
    box.fill("a" * 160)
    expect(counter).to_have_text("SMS: 160 characters, 1 segment(s)")
    box.fill("a" * 161)
    expect(counter).to_have_text("SMS: 161 characters, 2 segment(s)")
    box.fill("ż" * 71)
    expect(counter).to_have_text("SMS: 71 characters, 2 segment(s)")
