"""The `api` channel's inbound endpoint, through the whole spine (eager Celery)."""

from __future__ import annotations

import pytest

from channels_inbound.models import InboundEvent
from customers.models import Identity
from tests.conftest import message
from tickets.models import Ticket, TimelineEntry


def test_message_from_known_email_lands_on_that_customers_new_ticket(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_inbound(api_channel, message())
    assert response.status_code == 202
    assert response.json()["duplicate"] is False
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    ticket = Ticket.objects.get()
    assert ticket.customer == people.customer
    assert ticket.team == people.team_a
    assert ticket.status == Ticket.Status.NEW
    entry = ticket.entries.get()
    assert entry.text == "Where is my order?"
    assert entry.direction == TimelineEntry.Direction.INBOUND
    assert entry.channel == api_channel.channel


def test_duplicate_id_is_answered_200_and_changes_nothing(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_inbound(api_channel, message())
        second = post_inbound(api_channel, message())
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    assert TimelineEntry.objects.count() == 1


def test_unknown_sender_becomes_new_customer_with_identities(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    payload = message(email="New.Person@Example.COM", phone="+48 601 234 567", id="crm-77", name="Jan Nowak")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(api_channel, payload).status_code == 202
    ticket = Ticket.objects.get()
    assert ticket.customer.display_name == "Jan Nowak"
    values = set(ticket.customer.identities.values_list("kind", "value"))
    assert values == {("email", "new.person@example.com"), ("phone", "+48601234567"), ("external", "crm-77")}
    assert Identity.objects.get(kind="external").namespace == api_channel.channel.key


def test_invalid_payload_gets_field_errors_and_stores_nothing(people, api_channel, post_inbound):
    bad_email = post_inbound(api_channel, {"id": "x", "from": {"email": "not-an-email"}, "text": "hi"})
    no_text = post_inbound(api_channel, {"id": "y", "from": {"email": "a@example.com"}})
    no_sender = post_inbound(api_channel, {"id": "z", "from": {"name": "Nobody"}, "text": "hi"})
    assert bad_email.status_code == no_text.status_code == no_sender.status_code == 400
    assert "email" in bad_email.json()["errors"]["from"]
    assert "text" in no_text.json()["errors"]
    assert "non_field_errors" in no_sender.json()["errors"]["from"]
    assert InboundEvent.objects.count() == 0


def test_body_that_is_not_json_gets_400(people, api_channel, client):
    response = client.post(api_channel.url, data="{nope", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {api_channel.secret}")
    assert response.status_code == 400
    assert InboundEvent.objects.count() == 0


def test_wrong_secret_is_403_missing_is_401_unknown_key_is_404(people, api_channel, post_inbound):
    assert post_inbound(api_channel, message(), secret="wrong").status_code == 403
    assert post_inbound(api_channel, message(), secret="").status_code == 401
    assert post_inbound(api_channel, message(), url="/api/v1/channels/nope/inbound").status_code == 404
    assert InboundEvent.objects.count() == 0
    api_channel.channel.refresh_from_db()
    assert api_channel.channel.rejected_requests == 2


def test_trailing_slash_is_accepted(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(api_channel, message(), url=api_channel.url + "/").status_code == 202


# --- The hand-written check of the common payload shape gives what the serializer gives -------------

SAME_AS_SERIALIZER = [
    {"id": "m-1", "from": {"email": "Anna@Example.PL", "name": " Anna "}, "text": "  Hello  "},
    {"id": " m-2 ", "from": {"phone": "+48 601 234 567"}, "html": "<p>Hi</p>", "subject": "Order", "thread": "t-1"},
    {"id": "m-3", "from": {"id": "crm-7", "email": ""}, "text": "x", "unknown": "dropped"},
    {"id": "m-4", "from": {"id": "crm-7", "phone": "", "name": ""}, "text": "", "html": "<b>only html</b>"},
    {"id": "m-5", "from": {"email": "анна@пример.рф"}, "text": "Привет"},
]
LEFT_TO_THE_SERIALIZER = [
    {"id": "m-1", "from": {"email": "not an email"}, "text": "x"},
    {"id": "", "from": {"email": "a@example.com"}, "text": "x"},
    {"id": "m-1", "from": {"email": "a@example.com"}, "text": "   "},
    {"id": 7, "from": {"email": "a@example.com"}, "text": "x"},
    {"id": "m-1", "from": {"name": "Nobody"}, "text": "x"},
    {"id": "m-1", "from": "a@example.com", "text": "x"},
    {"id": "m-1", "from": {"email": "a@example.com"}, "text": "bad \ud800 surrogate"},
    {"id": "m-1", "from": {"email": "a@example.com"}, "text": "nul \x00 byte"},
    {"id": "m-1", "from": {"email": "a@example.com"}, "text": "x" * 100_001},
    {"id": "m-1", "from": {"email": "a@example.com"}, "text": None},
    {"id": "m-1", "from": {"email": "a@example.com"}, "text": "x", "attachments": []},
    ["not", "an", "object"],
]


@pytest.mark.parametrize("payload", SAME_AS_SERIALIZER + LEFT_TO_THE_SERIALIZER)
def test_payload_check_answers_exactly_as_the_serializer(payload):
    from channels_inbound.api.adapter import InboundPayloadSerializer, _fast_clean, inbound_payload_validate

    serializer = InboundPayloadSerializer(data=payload)
    expected = (serializer.validated_data, None) if serializer.is_valid() else (None, serializer.errors)

    assert inbound_payload_validate(payload) == expected
    if payload in SAME_AS_SERIALIZER:
        assert _fast_clean(payload) == expected[0]  # the fast path itself, not the fallback
    else:
        assert _fast_clean(payload) is None
