"""Channels created in the Django admin go through channel_create: secret generated, shown once."""

from __future__ import annotations

import json

import pytest

from channels_inbound.models import Channel


def test_admin_creates_api_channel_with_generated_secret_shown_once(people, client, django_capture_on_commit_callbacks):
    client.force_login(people.admin)
    response = client.post(
        "/admin/channels_inbound/channel/add/",
        {"name": "CRM", "kind": "api", "is_active": "on", "default_team": people.team_a.pk,
         "settings": json.dumps({"outbound_url": ""})},
        follow=True,
    )
    assert response.status_code == 200
    channel = Channel.objects.get(name="CRM")
    secret = channel.secret("secret")
    assert secret and secret in response.content.decode()
    assert secret not in json.dumps(channel.settings)
    page = client.get(f"/admin/channels_inbound/channel/{channel.pk}/change/").content.decode()
    assert secret not in page
    with django_capture_on_commit_callbacks(execute=True):
        inbound = client.post(
            f"/api/v1/channels/{channel.key}/inbound", data=json.dumps({"id": "1", "from": {"email": "x@example.com"}, "text": "hi"}),
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
    assert inbound.status_code == 202


def test_admin_refuses_unknown_settings_and_unavailable_kinds(people, client, monkeypatch):
    from channels_inbound import registry

    monkeypatch.delitem(registry._adapters, "telegram")  # a deployment without that provider's adapter
    client.force_login(people.admin)
    bad_setting = client.post("/admin/channels_inbound/channel/add/",
                              {"name": "X", "kind": "api", "settings": json.dumps({"nope": 1})})
    unavailable = client.post("/admin/channels_inbound/channel/add/",
                              {"name": "Y", "kind": "telegram", "settings": "{}"})
    assert bad_setting.status_code == unavailable.status_code == 200  # the form is shown again
    assert "Unknown settings: nope" in bad_setting.content.decode()
    assert "not available yet" in unavailable.content.decode()
    assert not Channel.objects.exists()


@pytest.fixture
def send_reply(people, api_channel, http_stub, django_capture_on_commit_callbacks):
    """Reply on a team A ticket of an api channel that POSTs to the stub, answering `status`."""
    from channels_inbound.services import channel_update
    from tests.factories import TicketFactory
    from tickets.services import ticket_reply

    channel_update(channel=api_channel.channel, settings_data={"outbound_url": http_stub.url("/replies")})
    ticket = TicketFactory(customer=people.customer, team=people.team_a, origin_channel=api_channel.channel)

    def send(status: int, json: dict):
        http_stub.respond(status=status, json=json)
        with django_capture_on_commit_callbacks(execute=True):
            entry = ticket_reply(ticket=ticket, by=people.agent_a, text="Hello")
        entry.refresh_from_db()
        return ticket, entry

    return send


def test_failed_reply_can_be_sent_again_from_api_and_page_but_unknown_cannot(people, send_reply, api_as, client, http_stub, django_capture_on_commit_callbacks):
    from tickets.models import TimelineEntry

    ticket, entry = send_reply(422, {"error": "unknown recipient"})
    assert entry.delivery_status == "failed"

    http_stub.respond(status=200, json={"id": "ext-1"})
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(people.agent_a).post(f"/api/v1/tickets/{ticket.pk}/messages/{entry.pk}/retry/")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert (entry.delivery_status, entry.provider_message_id) == ("sent", "ext-1")

    TimelineEntry.objects.filter(pk=entry.pk).update(delivery_status="unknown")
    again = api_as(people.agent_a).post(f"/api/v1/tickets/{ticket.pk}/messages/{entry.pk}/retry/")
    assert again.status_code == 409
    assert len(http_stub.requests) == 2

    client.force_login(people.agent_b)  # another team: the ticket does not exist for them
    assert client.post(f"/app/tickets/{ticket.pk}/messages/{entry.pk}/retry/").status_code == 404


def test_an_unknown_reply_is_sent_again_only_after_an_agent_marks_it_not_delivered(people, send_reply, api_as, client, http_stub, django_capture_on_commit_callbacks):
    from tickets.models import TimelineEntry

    ticket, entry = send_reply(200, {"id": "ext-1"})
    TimelineEntry.objects.filter(pk=entry.pk).update(delivery_status="unknown")
    api = api_as(people.agent_a)

    assert api.post(f"/api/v1/tickets/{ticket.pk}/messages/{entry.pk}/retry/").status_code == 409
    client.force_login(people.agent_a)
    assert "It did not arrive" in client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    marked = api.post(f"/api/v1/tickets/{ticket.pk}/messages/{entry.pk}/not-sent/")
    assert marked.status_code == 200 and marked.json()["delivery_status"] == "failed"
    assert people.agent_a.display_name in marked.json()["delivery_error"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/tickets/{ticket.pk}/messages/{entry.pk}/retry/").status_code == 200
    assert len(http_stub.requests) == 2
    assert api.post(f"/api/v1/tickets/{ticket.pk}/messages/{entry.pk}/not-sent/").status_code == 409
