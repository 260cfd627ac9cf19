"""Admins create Twilio channels through the API and see the exact webhook URLs; agents ask about
the WhatsApp window and send templates through the API; nobody sees what is not theirs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_inbound.models import Channel
from customers.models import ContactPreference
from tests.channels_inbound.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER_PHONE, fixture
from tickets.models import TimelineEntry

CREATE = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": "+48 22 123 45 67"}


@pytest.mark.parametrize("kind", ["sms", "whatsapp", "voice"])
def test_an_admin_creates_a_twilio_channel_and_sees_its_webhook_urls(api_as, people, kind, settings):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": kind, "name": "Phones", "settings": CREATE},
                                         format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    key = body["key"]
    base = f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/{key}"
    if kind == "voice":
        assert body["webhook_urls"] == {"voice": f"{base}/voice", "voice_status": f"{base}/voice/status",
                                        "client": f"{base}/voice/client"}
    else:
        assert body["webhook_urls"] == {"message": f"{base}/message", "status": f"{base}/status"}
    assert "auth_token" not in body["settings"]
    assert body["settings"]["phone_number"] == "+48221234567"
    channel = Channel.objects.get(key=key)
    assert channel.secret("auth_token") == AUTH_TOKEN
    assert AUTH_TOKEN not in channel.secrets_encrypted and "auth_token" not in channel.settings


@pytest.mark.parametrize(("settings_data", "field"), [
    ({"account_sid": "nope", "auth_token": "t", "phone_number": "+48221234567"}, "account_sid"),
    ({"account_sid": ACCOUNT_SID, "phone_number": "+48221234567"}, "auth_token"),
    ({"account_sid": ACCOUNT_SID, "auth_token": "t"}, "phone_number"),
    ({"account_sid": ACCOUNT_SID, "auth_token": "t", "phone_number": "12"}, "phone_number"),
    ({**CREATE, "messaging_service_sid": "MGshort"}, "messaging_service_sid"),
    ({**CREATE, "colour": "blue"}, "colour"),
])
def test_bad_settings_are_400_with_the_field_and_nothing_is_created(api_as, people, settings_data, field):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "sms", "name": "x", "settings": settings_data},
                                         format="json")
    assert response.status_code == 400
    assert field in response.json()["settings"]
    assert not Channel.objects.exists()


def test_voice_settings_are_checked(api_as, people):
    api = api_as(people.admin)
    bad_menu = {**CREATE, "menu": [{"digit": "1", "team": people.team_a.pk}, {"digit": "1", "team": people.team_b.pk}]}
    assert "menu" in api.post("/api/v1/channels/", {"kind": "voice", "name": "v", "settings": bad_menu}, format="json").json()["settings"]
    bad_hours = {**CREATE, "business_hours": [{"days": [0], "start": "17:00", "end": "09:00"}]}
    assert api.post("/api/v1/channels/", {"kind": "voice", "name": "v", "settings": bad_hours}, format="json").status_code == 400
    bad_zone = {**CREATE, "timezone": "Mars/Base"}
    assert "timezone" in api.post("/api/v1/channels/", {"kind": "voice", "name": "v", "settings": bad_zone}, format="json").json()["settings"]
    no_team = {**CREATE, "menu": [{"digit": "1", "team": 999999}]}
    assert api.post("/api/v1/channels/", {"kind": "voice", "name": "v", "settings": no_team}, format="json").status_code == 400
    assert not Channel.objects.exists()


def test_agents_cannot_create_channels(api_as, people):
    response = api_as(people.agent_a).post("/api/v1/channels/", {"kind": "sms", "name": "x", "settings": CREATE}, format="json")
    assert response.status_code == 403


@pytest.fixture
def whatsapp_ticket(whatsapp_channel, twilio_post, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(f"/webhooks/twilio/{whatsapp_channel.key}/message", fixture("whatsapp_inbound"))
    return TimelineEntry.objects.get().ticket


def test_the_composer_learns_until_when_the_window_is_open(api_as, people, whatsapp_ticket, whatsapp_channel):
    body = api_as(people.agent_a).get(f"/api/v1/tickets/{whatsapp_ticket.pk}/whatsapp/").json()
    assert body["channel"] == whatsapp_channel.key and body["number"] == CUSTOMER_PHONE
    assert body["template_required"] is False and body["window_open_until"]
    ContactPreference.objects.update(window_expires_at=timezone.now() - timedelta(seconds=1))
    body = api_as(people.agent_a).get(f"/api/v1/tickets/{whatsapp_ticket.pk}/whatsapp/").json()
    assert body == {**body, "template_required": True, "window_open_until": None}


def test_an_agent_sends_a_template_through_the_api(api_as, people, whatsapp_ticket, twilio_api, django_capture_on_commit_callbacks):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    ContactPreference.objects.update(window_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(people.agent_a).post(f"/api/v1/tickets/{whatsapp_ticket.pk}/whatsapp/template/",
                                               {"content_sid": "HX" + "e" * 32, "variables": {"1": "Anna"}}, format="json")
    assert response.status_code == 201
    entry = TimelineEntry.objects.get(pk=response.json()["id"])
    assert entry.delivery_status == "sent"
    assert entry.data["template"] == {"content_sid": "HX" + "e" * 32, "variables": {"1": "Anna"}}


def test_template_input_is_checked(api_as, people, whatsapp_ticket):
    api = api_as(people.agent_a)
    url = f"/api/v1/tickets/{whatsapp_ticket.pk}/whatsapp/template/"
    assert "content_sid" in api.post(url, {"content_sid": "HXnope"}, format="json").json()
    assert api.post(url, {"content_sid": "HX" + "e" * 32, "variables": {"a b": "x"}}, format="json").status_code == 400
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_other_teams_and_other_tickets_get_404(api_as, people, whatsapp_ticket, sms_channel, twilio_post,
                                               django_capture_on_commit_callbacks):
    assert api_as(people.agent_b).get(f"/api/v1/tickets/{whatsapp_ticket.pk}/whatsapp/").status_code == 404
    response = api_as(people.agent_b).post(f"/api/v1/tickets/{whatsapp_ticket.pk}/whatsapp/template/",
                                           {"content_sid": "HX" + "e" * 32}, format="json")
    assert response.status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(f"/webhooks/twilio/{sms_channel.key}/message", fixture("sms_inbound", From="+48700000001"))
    sms_ticket = TimelineEntry.objects.get(channel=sms_channel).ticket
    response = api_as(people.agent_a).get(f"/api/v1/tickets/{sms_ticket.pk}/whatsapp/")
    assert response.status_code == 404 and response.json()["code"] == "no_whatsapp"
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_the_connection_test_fetches_the_account_with_the_channels_credentials(api_as, people, sms_channel, twilio_api):
    import base64

    from tests.channels_inbound.twilio.conftest import AUTH_TOKEN as TOKEN

    twilio_api.respond(status=200, json={"sid": ACCOUNT_SID, "friendly_name": "Omnicenter PL", "status": "active"})
    response = api_as(people.admin).post(f"/api/v1/channels/{sms_channel.key}/test/")
    assert response.json() == {"ok": True, "message": "Connected to the Twilio account “Omnicenter PL”."}
    [request] = twilio_api.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"
    assert request.header("Authorization") == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()
    twilio_api.respond(status=401, json={"code": 20003, "message": "Authenticate", "status": 401})
    body = api_as(people.admin).post(f"/api/v1/channels/{sms_channel.key}/test/").json()
    assert body["ok"] is False and TOKEN not in body["message"]


def test_a_full_voice_channel_is_created_and_its_settings_kept_as_json(api_as, people):
    settings_data = {
        **CREATE, "api_key_sid": "SK" + "b" * 32, "api_key_secret": "k" * 32, "twiml_app_sid": "AP" + "c" * 32,
        "default_language": "pl", "greeting": {"pl": "Dzień dobry.", "en": "Hello."},
        "menu": [{"digit": "1", "team": people.team_a.pk, "label": "orders"}],
        "timezone": "Europe/Warsaw", "business_hours": [{"days": [0, 1, 2, 3, 4], "start": "08:30", "end": "17:00"}],
    }
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "voice", "name": "Phone", "settings": settings_data},
                                         format="json")
    assert response.status_code == 201, response.json()
    channel = Channel.objects.get(key=response.json()["key"])
    assert channel.settings["business_hours"] == [{"days": [0, 1, 2, 3, 4], "start": "08:30", "end": "17:00"}]
    assert channel.settings["menu"] == [{"digit": "1", "team": people.team_a.pk, "label": "orders"}]
    assert channel.secret("api_key_secret") == "k" * 32 and "api_key_secret" not in response.json()["settings"]
    # A later PATCH of one setting keeps the others and the secrets.
    response = api_as(people.admin).patch(f"/api/v1/channels/{channel.key}/", {"settings": {"ring_timeout": 30}}, format="json")
    assert response.status_code == 200, response.json()
    channel.refresh_from_db()
    assert channel.settings["ring_timeout"] == 30 and channel.settings["timezone"] == "Europe/Warsaw"
    assert channel.secret("auth_token") == AUTH_TOKEN
