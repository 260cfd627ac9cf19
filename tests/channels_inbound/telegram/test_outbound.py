"""Replies through sendMessage / sendPhoto / sendDocument, and the bot token kept out of sight."""

from __future__ import annotations

import logging

import pytest

from channels_inbound import registry
from channels_inbound.base import InboundAttachment, PermanentSendError
from channels_inbound.models import Channel
from tests.channels_inbound.telegram.conftest import BOT_TOKEN, USER_ID, load
from tickets.models import TimelineEntry
from tickets.services import ticket_reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply(people, post_update, telegram, django_capture_on_commit_callbacks):
    post_update(telegram, load("message_text.json"))

    def send(text="Your parcel left the warehouse today.", **kwargs) -> TimelineEntry:
        ticket = TimelineEntry.objects.get(direction="in").ticket
        with django_capture_on_commit_callbacks(execute=True):
            entry = ticket_reply(ticket=ticket, by=people.agent_a, text=text, **kwargs)
        entry.refresh_from_db()
        return entry

    return send


def test_a_reply_goes_out_with_sendmessage_to_the_private_chat(reply, bot_api):
    entry = reply()

    assert (entry.delivery_status, entry.provider_message_id) == ("sent", f"{USER_ID}:501")
    [call] = bot_api.calls("/sendMessage")
    assert call.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert call.json() == {"chat_id": USER_ID, "text": "Your parcel left the warehouse today."}


def test_a_photo_goes_with_sendphoto_and_the_text_as_its_caption(reply, bot_api):
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
    entry = reply(text="Here is the label.", attachments=[InboundAttachment("label.png", "image/png", png)])

    assert entry.delivery_status == "sent"
    assert bot_api.calls("/sendMessage") == []
    [call] = bot_api.calls("/sendPhoto")
    assert call.header("Content-Type").startswith("multipart/form-data")
    assert b'name="photo"; filename="label.png"' in call.body
    assert b'name="caption"\r\n\r\nHere is the label.' in call.body
    assert f'name="chat_id"\r\n\r\n{USER_ID}'.encode() in call.body


def test_other_files_go_with_senddocument(reply, bot_api):
    entry = reply(text="", attachments=[InboundAttachment("invoice.pdf", "application/pdf", b"%PDF-1.4 x")])
    assert entry.delivery_status == "sent"
    assert b'name="document"; filename="invoice.pdf"' in bot_api.calls("/sendDocument")[0].body


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, "failed"),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, "failed"),
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
               "parameters": {"retry_after": 5}}, "queued"),
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, "queued"),
    ],
)
def test_bot_api_errors_map_to_the_delivery_state_machine(reply, bot_api, status, body, expected, caplog):
    bot_api.route(f"/bot{BOT_TOKEN}/sendMessage", status=status, json=body)
    with caplog.at_level(logging.DEBUG):
        entry = reply()

    assert entry.delivery_status == expected
    assert body["description"] in entry.delivery_error
    assert BOT_TOKEN not in entry.delivery_error
    assert BOT_TOKEN not in caplog.text


def test_an_unreachable_api_and_a_timeout_never_show_the_token(reply, bot_api, settings, caplog):
    settings.OUTBOUND_HTTP_TIMEOUT = 1
    bot_api.route(f"/bot{BOT_TOKEN}/sendMessage", json={"ok": True, "result": {}}, delay=2)
    with caplog.at_level(logging.DEBUG):
        timed_out = reply()
        settings.TELEGRAM_API_URL = "http://127.0.0.1:9"  # nothing listens there
        refused = reply(text="second try")

    assert timed_out.delivery_status == "unknown"
    assert refused.delivery_status == "queued"
    for entry in (timed_out, refused):
        assert BOT_TOKEN not in entry.delivery_error
    assert BOT_TOKEN not in caplog.text


def test_send_text_sends_a_notification(telegram, bot_api):
    registry.adapter_for("telegram").send_text(Channel.objects.get(pk=telegram.channel.pk), USER_ID, "Code: 123456")
    assert bot_api.calls("/sendMessage")[0].json() == {"chat_id": USER_ID, "text": "Code: 123456"}


def test_send_text_to_someone_who_never_started_the_bot_is_refused(telegram, bot_api):
    bot_api.route(f"/bot{BOT_TOKEN}/sendMessage", status=403, json={
        "ok": False, "error_code": 403, "description": "Forbidden: bot can't initiate conversation with a user"})
    with pytest.raises(PermanentSendError, match="initiate conversation"):
        registry.adapter_for("telegram").send_text(Channel.objects.get(pk=telegram.channel.pk), "42", "hi")
