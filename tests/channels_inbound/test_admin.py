"""Channels created in the Django admin go through channel_create: secret generated, shown once."""

from __future__ import annotations

import json

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


def test_admin_refuses_unknown_settings_and_unavailable_kinds(people, client):
    client.force_login(people.admin)
    bad_setting = client.post("/admin/channels_inbound/channel/add/",
                              {"name": "X", "kind": "api", "settings": json.dumps({"nope": 1})})
    unavailable = client.post("/admin/channels_inbound/channel/add/",
                              {"name": "Y", "kind": "sms", "settings": "{}"})
    assert bad_setting.status_code == unavailable.status_code == 200  # the form is shown again
    assert "Unknown settings: nope" in bad_setting.content.decode()
    assert "not available yet" in unavailable.content.decode()
    assert not Channel.objects.exists()
