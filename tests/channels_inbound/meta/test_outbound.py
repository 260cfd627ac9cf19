"""Replies through the Send API: what we send, the messaging window, and every provider outcome."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_inbound import registry
from channels_inbound.base import ChannelWindowExpired, InboundAttachment, PermanentSendError
from channels_inbound.delivery import message_deliver
from channels_inbound.models import Channel
from customers.models import ContactPreference
from tests.channels_inbound.meta.conftest import PAGE_TOKEN, PSID, at, load, messenger_settings
from tests.factories import make_channel
from tickets.models import TimelineEntry
from tickets.services import ticket_reply

pytestmark = pytest.mark.django_db

HOUR_MS = 3600 * 1000


@pytest.fixture
def reply(people, django_capture_on_commit_callbacks):
    def send(text="We have it in M and L.", **kwargs) -> TimelineEntry:
        ticket = TimelineEntry.objects.filter(direction="in").latest("pk").ticket
        with django_capture_on_commit_callbacks(execute=True):
            entry = ticket_reply(ticket=ticket, by=people.agent_a, text=text, **kwargs)
        entry.refresh_from_db()
        return entry

    return send


def _customer_wrote(post_meta, channel, hours_ago: float = 0) -> None:
    payload = at(load("messenger_text.json", now=False), int(time.time() * 1000 - hours_ago * HOUR_MS))
    post_meta(channel, payload)


def test_a_reply_goes_to_the_send_api_as_a_response(post_meta, messenger, graph, reply):
    _customer_wrote(post_meta, messenger)
    entry = reply()

    assert (entry.delivery_status, entry.provider_message_id) == ("sent", "m_out_1")
    [call] = graph.calls("/me/messages")
    assert call.method == "POST"
    assert call.path == f"/v21.0/me/messages?access_token={PAGE_TOKEN}"
    assert call.header("Content-Type") == "application/json"
    assert call.json() == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "We have it in M and L."}}


def test_a_long_reply_is_split_at_the_send_api_limit(post_meta, messenger, graph, reply):
    _customer_wrote(post_meta, messenger)
    entry = reply(text="x" * 4500)
    assert entry.delivery_status == "sent"
    assert [len(c.json()["message"]["text"]) for c in graph.calls("/me/messages")] == [2000, 2000, 500]


def test_an_attachment_is_uploaded_as_multipart_filedata(post_meta, messenger, graph, reply):
    _customer_wrote(post_meta, messenger)
    entry = reply(text="", attachments=[InboundAttachment("invoice.pdf", "application/pdf", b"%PDF-1.4 test")])

    assert entry.delivery_status == "sent"
    [call] = graph.calls("/me/messages")
    assert call.header("Content-Type").startswith("multipart/form-data")
    assert b'name="filedata"; filename="invoice.pdf"' in call.body
    assert b"%PDF-1.4 test" in call.body
    assert b'{"attachment": {"type": "file", "payload": {"is_reusable": false}}}' in call.body
    assert b'{"id": "' + PSID.encode() + b'"}' in call.body


def test_after_24_hours_the_reply_is_refused_up_front_and_nothing_is_queued(post_meta, messenger, graph, people):
    _customer_wrote(post_meta, messenger, hours_ago=25)
    ticket = TimelineEntry.objects.get(direction="in").ticket

    with pytest.raises(ChannelWindowExpired, match="More than 24 hours have passed"):
        ticket_reply(ticket=ticket, by=people.agent_a, text="Sorry for the delay")
    assert not TimelineEntry.objects.filter(direction="out").exists()
    assert graph.calls("/me/messages") == []


def test_the_api_answers_409_with_the_reason(post_meta, messenger, graph, people, api_as):
    _customer_wrote(post_meta, messenger, hours_ago=25)
    ticket = TimelineEntry.objects.get(direction="in").ticket

    response = api_as(people.agent_a).post(f"/api/v1/tickets/{ticket.pk}/messages/",
                                           {"kind": "reply", "text": "Sorry for the delay"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "window_expired"
    assert "24 hours" in response.json()["detail"]
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_a_window_that_closes_before_the_send_fails_the_message_clearly(post_meta, messenger, graph, people,
                                                                       django_capture_on_commit_callbacks):
    _customer_wrote(post_meta, messenger)
    ticket = TimelineEntry.objects.get(direction="in").ticket
    entry = ticket_reply(ticket=ticket, by=people.agent_a, text="queued while the window was open")
    ContactPreference.objects.update(window_expires_at=timezone.now() - timedelta(hours=1))

    message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert entry.delivery_status == "failed"
    assert "More than 24 hours have passed" in entry.delivery_error
    assert graph.calls("/me/messages") == []


def test_with_the_human_agent_permission_an_agent_answers_within_7_days(post_meta, messenger, graph, reply):
    Channel.objects.filter(pk=messenger.channel.pk).update(settings=messenger_settings(human_agent_tag=True))
    _customer_wrote(post_meta, messenger, hours_ago=72)
    entry = reply()

    assert entry.delivery_status == "sent"
    body = graph.calls("/me/messages")[0].json()
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_after_7_days_even_the_human_agent_tag_is_refused(post_meta, messenger, graph, people):
    Channel.objects.filter(pk=messenger.channel.pk).update(settings=messenger_settings(human_agent_tag=True))
    _customer_wrote(post_meta, messenger, hours_ago=8 * 24)
    ticket = TimelineEntry.objects.get(direction="in").ticket

    with pytest.raises(ChannelWindowExpired, match="7 days"):
        ticket_reply(ticket=ticket, by=people.agent_a, text="hello?")
    assert graph.calls("/me/messages") == []


def test_an_automatic_message_never_uses_the_human_agent_tag(post_meta, messenger, graph):
    Channel.objects.filter(pk=messenger.channel.pk).update(settings=messenger_settings(human_agent_tag=True))
    _customer_wrote(post_meta, messenger, hours_ago=30)
    adapter = registry.adapter_for("messenger")
    with pytest.raises(PermanentSendError, match="24 hours"):
        adapter.send_text(Channel.objects.get(pk=messenger.channel.pk), PSID, "Your code is 123456")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"error": {"message": "An unexpected error has occurred.", "code": 2, "is_transient": True}}, "queued"),
        (400, {"error": {"message": "Calls to this api have exceeded the rate limit.", "code": 613}}, "queued"),
        (400, {"error": {"message": "(#100) No matching user found", "type": "OAuthException", "code": 100}}, "failed"),
        (403, {"error": {"message": "(#551) This person isn't available right now.", "code": 551}}, "failed"),
    ],
)
def test_graph_errors_map_to_the_delivery_state_machine(post_meta, messenger, graph, reply, status, body, expected):
    _customer_wrote(post_meta, messenger)
    graph.route("/v21.0/me/messages", status=status, json=body)
    entry = reply()

    assert entry.delivery_status == expected
    assert body["error"]["message"] in entry.delivery_error
    assert PAGE_TOKEN not in entry.delivery_error


def test_metas_own_window_refusal_is_explained(post_meta, messenger, graph, reply):
    _customer_wrote(post_meta, messenger)
    graph.route("/v21.0/me/messages", status=400, json={"error": {
        "message": "(#10) This message is sent outside of allowed window.", "code": 10, "error_subcode": 2018278}})
    entry = reply()
    assert entry.delivery_status == "failed"
    assert "24-hour window is closed" in entry.delivery_error


def test_a_timeout_leaves_the_outcome_unknown(post_meta, messenger, graph, reply, settings):
    settings.OUTBOUND_HTTP_TIMEOUT = 1
    _customer_wrote(post_meta, messenger)
    graph.route("/v21.0/me/messages", json={"message_id": "late"}, delay=2)
    entry = reply()
    assert entry.delivery_status == "unknown"


def test_send_text_reaches_a_known_person_and_refuses_a_stranger(post_meta, messenger, graph):
    _customer_wrote(post_meta, messenger)
    adapter = registry.adapter_for("messenger")
    channel = Channel.objects.get(pk=messenger.channel.pk)

    adapter.send_text(channel, PSID, "Your sign-in code is 123456")
    assert graph.calls("/me/messages")[-1].json()["message"] == {"text": "Your sign-in code is 123456"}
    with pytest.raises(PermanentSendError):
        adapter.send_text(channel, "1234567890", "hello")


def test_a_reply_is_not_sent_to_another_pages_psid(post_meta, messenger, graph, people, django_capture_on_commit_callbacks):
    other, _ = make_channel(kind="messenger", name="Outlet", settings_data=messenger_settings(page_id="555"))
    _customer_wrote(post_meta, messenger)
    ticket = TimelineEntry.objects.get(direction="in").ticket
    identity = TimelineEntry.objects.get(direction="in").identity
    with django_capture_on_commit_callbacks(execute=True):
        entry = ticket_reply(ticket=ticket, by=people.agent_a, text="hi", channel=other, identity=identity)
    entry.refresh_from_db()
    assert entry.delivery_status == "failed"
    assert graph.calls("/me/messages") == []


def test_the_page_token_stays_out_of_debug_logs(post_meta, messenger, graph, reply, caplog):
    import logging

    _customer_wrote(post_meta, messenger)
    with caplog.at_level(logging.DEBUG):
        assert reply().delivery_status == "sent"
    assert "access_token=<redacted>" in caplog.text
    assert PAGE_TOKEN not in caplog.text


def test_the_workspace_composer_shows_the_window_refusal(post_meta, messenger, graph, people, client):
    _customer_wrote(post_meta, messenger, hours_ago=25)
    ticket = TimelineEntry.objects.get(direction="in").ticket
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "reply", "text": "Sorry for the delay",
                                                                 "confirm": "on"}, follow=True)

    assert "More than 24 hours have passed since the customer" in response.content.decode()
    assert not TimelineEntry.objects.filter(direction="out").exists()
    assert graph.calls("/me/messages") == []
