"""Creating Messenger and Instagram channels through `/api/v1/channels/`."""

from __future__ import annotations

import pytest

from channels_inbound.models import Channel
from tests.channels_inbound.meta.conftest import APP_SECRET, PAGE_TOKEN, messenger_settings

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_messenger_channel_and_sees_its_webhook_url_never_its_secrets(api_as, people, settings):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "messenger", "name": "Shop page",
                                                               "settings": messenger_settings()}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["webhook_urls"] == {"webhook": f"{settings.PUBLIC_BASE_URL}/webhooks/meta/{body['key']}"}
    assert body["settings"] == {"page_id": "104578562110301", "verify_token": "my-verify-token", "human_agent_tag": False}
    assert PAGE_TOKEN not in response.content.decode() and APP_SECRET not in response.content.decode()
    channel = Channel.objects.get(key=body["key"])
    assert channel.secret("app_secret") == APP_SECRET
    assert PAGE_TOKEN not in str(channel.settings) and APP_SECRET not in channel.secrets_encrypted


def test_an_instagram_channel_needs_its_account_id(api_as, people):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "instagram", "name": "IG",
                                                               "settings": messenger_settings()}, format="json")
    assert response.status_code == 400
    assert "instagram_account_id" in response.json()["settings"]
    assert not Channel.objects.filter(kind="instagram").exists()


def test_settings_are_validated(api_as, people):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "messenger", "name": "x",
                                                               "settings": messenger_settings(page_id="my page")}, format="json")
    assert response.status_code == 400
    assert "page_id" in response.json()["settings"]


def test_agents_cannot_create_or_read_channels(api_as, people):
    api = api_as(people.agent_a)
    assert api.post("/api/v1/channels/", {"kind": "messenger", "name": "x", "settings": messenger_settings()},
                    format="json").status_code == 403
    assert api.get("/api/v1/channels/").status_code == 403


def test_the_connection_test_checks_the_page_token(api_as, people, messenger, graph):
    graph.route("/v21.0/me?", json={"id": "104578562110301", "name": "Shop page"})
    response = api_as(people.admin).post(f"/api/v1/channels/{messenger.channel.key}/test/")
    assert response.json() == {"ok": True, "message": "Connected to Shop page (104578562110301)."}

    graph.route("/v21.0/me?", status=400, json={"error": {"message": "Invalid OAuth access token.", "code": 190}})
    response = api_as(people.admin).post(f"/api/v1/channels/{messenger.channel.key}/test/")
    assert response.json()["ok"] is False
    assert "Invalid OAuth access token" in response.json()["message"]
    assert PAGE_TOKEN not in response.json()["message"]


def test_an_admin_edits_a_messenger_channel_in_the_admin_without_retyping_its_secrets(client, people, messenger):
    import json

    client.force_login(people.admin)
    channel = messenger.channel
    page = client.get(f"/admin/channels_inbound/channel/{channel.pk}/change/").content.decode()
    assert PAGE_TOKEN not in page and APP_SECRET not in page

    response = client.post(f"/admin/channels_inbound/channel/{channel.pk}/change/", {
        "name": "Shop page (PL)", "kind": "messenger", "is_active": "on", "default_team": people.team_a.pk,
        "settings": json.dumps({**channel.settings, "verify_token": "rotated"}),
    })

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.settings["verify_token"]) == ("Shop page (PL)", "rotated")
    assert (channel.secret("app_secret"), channel.secret("page_access_token")) == (APP_SECRET, PAGE_TOKEN)
