"""Replies through the twilio SDK to a local stand-in for Twilio's API: what the SDK sends, each
outcome, status callbacks, opt-outs, the WhatsApp window and templates, send_text."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.test import Client
from django.utils import timezone

from channels_inbound import registry
from channels_inbound.base import PermanentSendError
from channels_inbound.models import InboundEvent
from channels_inbound.services import inbound_event_process
from channels_inbound.twilio import messaging
from customers.models import ContactPreference
from tests.channels_inbound.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER_PHONE, NUMBER, fixture
from tickets import services
from tickets.models import TimelineEntry

D = TimelineEntry.Delivery
SID = "SM" + "c" * 32


def form(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


@pytest.fixture
def inbound(twilio_post, django_capture_on_commit_callbacks):
    def receive(channel, name: str = "sms_inbound", **changes) -> TimelineEntry:
        with django_capture_on_commit_callbacks(execute=True):
            response = twilio_post(f"/webhooks/twilio/{channel.key}/message", fixture(name, **changes))
        assert response.status_code == 200
        return TimelineEntry.objects.filter(direction="in").latest("pk")

    return receive


@pytest.fixture
def reply(people, django_capture_on_commit_callbacks):
    def send(ticket, text: str = "It ships today.") -> TimelineEntry:
        with django_capture_on_commit_callbacks(execute=True):
            entry = services.ticket_reply(ticket=ticket, text=text, by=people.agent_a)
        entry.refresh_from_db()
        return entry

    return send


def test_a_reply_goes_out_through_the_sdk_with_basic_auth_and_a_status_callback(sms_channel, twilio_api, inbound, reply, settings):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    ticket = inbound(sms_channel).ticket
    entry = reply(ticket, "Zażółć gęślą jaźń: it ships today.")
    assert entry.delivery_status == D.SENT
    assert entry.provider_message_id == SID
    [request] = twilio_api.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.header("Authorization") == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    sent = form(request)
    body = sent.pop("Body")
    assert sent == {
        "To": CUSTOMER_PHONE, "From": NUMBER,
        "StatusCallback": f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/{sms_channel.key}/status",
    }
    # The ticket's first text carries its signed status link; the next ones do not.
    text, link = body.split("\n\n")
    assert text == "Zażółć gęślą jaźń: it ships today."
    assert link.startswith(f"Follow your request #{ticket.number}: {settings.PUBLIC_BASE_URL}/portal/status/")
    status_page = Client().get(link.rsplit(" ", 1)[1].removeprefix(settings.PUBLIC_BASE_URL))
    assert status_page.status_code == 200 and f"#{ticket.number}" in status_page.content.decode()
    twilio_api.respond(status=201, json={**fixture("message_create_response"), "sid": "SM" + "d" * 32})
    reply(ticket, "And the tracking number is 42.")
    assert form(twilio_api.requests[1])["Body"] == "And the tracking number is 42."


def test_a_messaging_service_channel_sends_with_its_sid(people, twilio_api, inbound, reply):
    from tests.channels_inbound.twilio.conftest import _channel

    channel = _channel("sms", people, phone_number="", messaging_service_sid="MG" + "b" * 32)
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    reply(inbound(channel).ticket)
    fields = form(twilio_api.requests[0])
    assert fields["MessagingServiceSid"] == "MG" + "b" * 32
    assert "From" not in fields


def test_whatsapp_addresses_carry_the_whatsapp_prefix(whatsapp_channel, twilio_api, inbound, reply):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    entry = reply(inbound(whatsapp_channel, "whatsapp_inbound").ticket)
    assert entry.delivery_status == D.SENT
    fields = form(twilio_api.requests[0])
    assert fields["To"] == f"whatsapp:{CUSTOMER_PHONE}"
    assert fields["From"] == "whatsapp:+14155238886"


def test_a_twilio_5xx_is_retried_later(sms_channel, twilio_api, inbound, reply):
    twilio_api.respond(status=503, json={"code": 20500, "message": "Internal Server Error", "status": 503})
    entry = reply(inbound(sms_channel).ticket)
    assert entry.delivery_status == D.QUEUED
    assert entry.next_attempt_at is not None


def test_a_twilio_refusal_fails_with_twilios_reason(sms_channel, twilio_api, inbound, reply):
    twilio_api.respond(status=400, json={"code": 21211, "message": "The 'To' number is not a valid phone number.",
                                         "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})
    entry = reply(inbound(sms_channel).ticket)
    assert entry.delivery_status == D.FAILED
    assert "21211" in entry.delivery_error and "not a valid phone number" in entry.delivery_error


def test_a_carrier_opt_out_refusal_is_remembered(sms_channel, twilio_api, inbound, reply):
    twilio_api.respond(status=400, json={"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})
    entry = reply(inbound(sms_channel).ticket)
    assert entry.delivery_status == D.FAILED
    assert ContactPreference.objects.get(identity=entry.identity, channel_kind="sms").opted_out_at is not None


def test_a_timeout_is_an_unknown_outcome_never_resent(sms_channel, twilio_api, inbound, reply, settings):
    settings.OUTBOUND_HTTP_TIMEOUT = 1
    twilio_api.respond(status=201, json=fixture("message_create_response"), delay=3)
    entry = reply(inbound(sms_channel).ticket)
    assert entry.delivery_status == D.UNKNOWN
    assert len(twilio_api.requests) == 1


def _status(twilio_post, channel, status: str, sid: str = SID, **extra):
    return twilio_post(f"/webhooks/twilio/{channel.key}/status",
                       fixture("status_delivered", MessageStatus=status, SmsStatus=status, MessageSid=sid, SmsSid=sid, **extra))


def test_status_callbacks_move_forward_and_never_back(sms_channel, twilio_api, inbound, reply, twilio_post,
                                                      django_capture_on_commit_callbacks):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    entry = reply(inbound(sms_channel).ticket)
    with django_capture_on_commit_callbacks(execute=True):
        assert _status(twilio_post, sms_channel, "sent").status_code == 204
        _status(twilio_post, sms_channel, "delivered")
    entry.refresh_from_db()
    assert entry.delivery_status == D.DELIVERED and entry.delivered_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        _status(twilio_post, sms_channel, "sent")  # already stored: a duplicate
        _status(twilio_post, sms_channel, "queued")
        _status(twilio_post, sms_channel, "sending")
    entry.refresh_from_db()
    assert entry.delivery_status == D.DELIVERED
    with django_capture_on_commit_callbacks(execute=True):
        _status(twilio_post, sms_channel, "read")
    entry.refresh_from_db()
    assert entry.delivery_status == D.READ


def test_undelivered_fails_the_message_with_the_error_code(sms_channel, twilio_api, inbound, reply, twilio_post,
                                                          django_capture_on_commit_callbacks):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    entry = reply(inbound(sms_channel).ticket)
    with django_capture_on_commit_callbacks(execute=True):
        _status(twilio_post, sms_channel, "undelivered", ErrorCode="30003")
    entry.refresh_from_db()
    assert entry.delivery_status == D.FAILED
    assert "30003" in entry.delivery_error


def test_a_status_for_a_message_not_yet_known_is_kept_and_applied_later(sms_channel, twilio_api, inbound, reply,
                                                                       twilio_post, django_capture_on_commit_callbacks):
    ticket = inbound(sms_channel).ticket
    with django_capture_on_commit_callbacks(execute=True):
        _status(twilio_post, sms_channel, "delivered")
    event = InboundEvent.objects.get(external_id=f"status:{SID}:delivered")
    assert event.status == InboundEvent.Status.FAILED  # kept, retried with backoff
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    entry = reply(ticket)
    assert entry.delivery_status == D.SENT
    InboundEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    assert inbound_event_process(event_id=event.pk) == "processed"
    entry.refresh_from_db()
    assert entry.delivery_status == D.DELIVERED


def test_sending_to_an_opted_out_number_is_refused_with_a_clear_message(sms_channel, twilio_api, inbound, reply):
    ticket = inbound(sms_channel, Body="STOP", MessageSid="SM-stop", SmsSid="SM-stop").ticket
    entry = reply(ticket)
    assert entry.delivery_status == D.FAILED
    assert "opted out" in entry.delivery_error and "START" in entry.delivery_error
    assert twilio_api.requests == []


def test_whatsapp_outside_the_window_only_a_template_can_be_sent(whatsapp_channel, twilio_api, inbound, reply, people,
                                                                django_capture_on_commit_callbacks):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    first = inbound(whatsapp_channel, "whatsapp_inbound")
    assert messaging.window_open_until(identity=first.identity) > timezone.now() + timedelta(hours=23)
    ContactPreference.objects.filter(channel_kind="whatsapp").update(window_expires_at=timezone.now() - timedelta(minutes=1))
    assert messaging.window_open_until(identity=first.identity) is None
    entry = reply(first.ticket)
    assert entry.delivery_status == D.FAILED
    assert "24-hour" in entry.delivery_error and "template" in entry.delivery_error
    assert twilio_api.requests == []
    with django_capture_on_commit_callbacks(execute=True):
        template = messaging.template_send(ticket=first.ticket, by=people.agent_a, content_sid="HX" + "d" * 32,
                                           variables={"1": "Anna", "2": "#1042"})
    template.refresh_from_db()
    assert template.delivery_status == D.SENT
    fields = form(twilio_api.requests[0])
    assert fields["ContentSid"] == "HX" + "d" * 32
    assert json.loads(fields["ContentVariables"]) == {"1": "Anna", "2": "#1042"}
    assert "Body" not in fields
    assert fields["To"] == f"whatsapp:{CUSTOMER_PHONE}"


def test_a_customer_message_reopens_the_window(whatsapp_channel, twilio_api, inbound, reply):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    first = inbound(whatsapp_channel, "whatsapp_inbound")
    ContactPreference.objects.update(window_expires_at=timezone.now() - timedelta(hours=1))
    inbound(whatsapp_channel, "whatsapp_inbound", MessageSid="SMagain", SmsSid="SMagain")
    assert reply(first.ticket).delivery_status == D.SENT


def test_templates_are_refused_on_sms_and_with_a_bad_content_sid(sms_channel, inbound, people):
    from omnicenter.errors import DomainError

    ticket = inbound(sms_channel).ticket
    with pytest.raises(DomainError):
        messaging.template_send(ticket=ticket, by=people.agent_a, content_sid="HX" + "d" * 32, variables={})
    with pytest.raises(DomainError):
        messaging.template_send(ticket=ticket, by=people.agent_a, content_sid="nope", variables={})
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_send_text_notifies_a_number_outside_any_ticket(sms_channel, twilio_api):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    adapter = registry.adapter_for("sms")
    assert adapter.can_send_text
    adapter.send_text(sms_channel, "+48 601 234 567", "Your sign-in code is 123456")
    assert form(twilio_api.requests[0])["To"] == CUSTOMER_PHONE
    assert form(twilio_api.requests[0])["Body"] == "Your sign-in code is 123456"
    with pytest.raises(PermanentSendError):
        adapter.send_text(sms_channel, "not a number", "x")


def test_send_text_respects_an_opt_out(sms_channel, twilio_api, inbound):
    inbound(sms_channel, Body="STOP")
    with pytest.raises(PermanentSendError, match="opted out"):
        registry.adapter_for("sms").send_text(sms_channel, CUSTOMER_PHONE, "code 1")
    assert len(twilio_api.requests) == 0


def test_late_processing_never_shortens_the_window_or_undoes_a_later_stop(sms_channel, whatsapp_channel, inbound):
    entry = inbound(whatsapp_channel, "whatsapp_inbound")
    identity = entry.identity
    until = messaging.window_open_until(identity=identity)
    messaging.window_extend(identity=identity, until=until - timedelta(hours=3))  # an older message, processed late
    assert messaging.window_open_until(identity=identity) == until
    now = timezone.now()
    messaging.preference_opt_out(identity=identity, channel_kind="sms", at=now)
    messaging.preference_opt_in(identity=identity, channel_kind="sms", at=now - timedelta(minutes=5))  # START sent before
    assert messaging.opted_out_at(identity=identity, channel_kind="sms") == now
    messaging.preference_opt_in(identity=identity, channel_kind="sms", at=now + timedelta(minutes=1))
    assert messaging.opted_out_at(identity=identity, channel_kind="sms") is None


def _listing(*messages) -> dict:
    return {"messages": list(messages), "end": 0, "first_page_uri": "", "next_page_uri": None, "page": 0,
            "page_size": 50, "previous_page_uri": None, "start": 0, "uri": ""}


def test_an_unknown_outcome_is_reconciled_from_twilios_message_list(sms_channel, twilio_api, inbound, reply, settings):
    from channels_inbound.delivery import outbound_sweep

    settings.OUTBOUND_HTTP_TIMEOUT = 1
    twilio_api.respond(status=201, json=fixture("message_create_response"), delay=3)
    entry = reply(inbound(sms_channel).ticket, "It ships today.")
    assert entry.delivery_status == D.UNKNOWN
    created = timezone.now().strftime("%a, %d %b %Y %H:%M:%S +0000")
    twilio_api.respond(status=200, json=_listing(
        fixture("message_create_response", sid="SMother", body="Something else", date_created=created),
        fixture("message_create_response", status="delivered", date_created=created),
    ))
    assert outbound_sweep()["reconciled"] == 1
    entry.refresh_from_db()
    assert entry.delivery_status == D.DELIVERED and entry.provider_message_id == SID
    listing = twilio_api.requests[-1]
    assert listing.method == "GET" and listing.path.startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?")
    assert "To=%2B48601234567" in listing.path


def test_an_unknown_outcome_twilio_never_saw_stays_unknown(sms_channel, twilio_api, inbound, reply, settings):
    from channels_inbound.delivery import outbound_sweep

    settings.OUTBOUND_HTTP_TIMEOUT = 1
    twilio_api.respond(status=201, json=fixture("message_create_response"), delay=3)
    entry = reply(inbound(sms_channel).ticket)
    twilio_api.respond(status=200, json=_listing())
    assert outbound_sweep()["reconciled"] == 0
    entry.refresh_from_db()
    assert entry.delivery_status == D.UNKNOWN
