"""Creating a Telegram channel: secret token shown once, webhook registered, and rotated by command."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from channels_inbound.models import Channel
from tests.channels_inbound.telegram.conftest import BOT_TOKEN, load

pytestmark = pytest.mark.django_db


def test_creating_a_channel_shows_the_secret_once_and_registers_the_webhook(
    api_as, people, bot_api, settings, django_capture_on_commit_callbacks
):
    api = api_as(people.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/channels/", {"kind": "telegram", "name": "Shop bot",
                                                  "settings": {"bot_token": BOT_TOKEN}}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["secrets"]["secret_token"]
    url = f"{settings.PUBLIC_BASE_URL}/webhooks/telegram/{body['key']}"
    assert body["webhook_urls"] == {"webhook": url}
    assert body["settings"] == {}
    assert BOT_TOKEN not in response.content.decode()
    [set_webhook] = bot_api.calls("/setWebhook")
    assert set_webhook.path == f"/bot{BOT_TOKEN}/setWebhook"
    assert set_webhook.json() == {"url": url, "secret_token": secret,
                                  "allowed_updates": ["message", "edited_message", "callback_query"]}
    # Shown once: reading the channel again never returns it.
    again = api.get(f"/api/v1/channels/{body['key']}/").content.decode()
    assert secret not in again and BOT_TOKEN not in again


def test_a_malformed_bot_token_is_refused(api_as, people):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "telegram", "name": "x",
                                                               "settings": {"bot_token": "nope"}}, format="json")
    assert response.status_code == 400
    assert "bot_token" in response.json()["settings"]
    assert not Channel.objects.exists()


def test_the_connection_test_registers_the_webhook_and_names_the_bot(api_as, people, telegram, bot_api):
    response = api_as(people.admin).post(f"/api/v1/channels/{telegram.channel.key}/test/")
    assert response.json()["ok"] is True
    assert "@shop_help_bot" in response.json()["message"]
    assert bot_api.calls("/setWebhook")[0].json()["secret_token"] == telegram.secret_token


def test_a_revoked_token_fails_the_connection_test_without_showing_it(api_as, people, telegram, bot_api):
    bot_api.route(f"/bot{BOT_TOKEN}/getMe", status=401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})
    body = api_as(people.admin).post(f"/api/v1/channels/{telegram.channel.key}/test/").json()
    assert body["ok"] is False
    assert "Unauthorized" in body["message"] and BOT_TOKEN not in body["message"]


def test_the_command_registers_a_fresh_secret_and_the_old_one_stops_working(telegram, bot_api, post_update, capsys):
    call_command("telegram_set_webhook", "--channel", telegram.channel.key)

    new_secret = bot_api.calls("/setWebhook")[-1].json()["secret_token"]
    assert new_secret != telegram.secret_token
    assert "@shop_help_bot" in capsys.readouterr().out
    assert post_update(telegram, load("message_text.json")).status_code == 403
    assert post_update(telegram, load("message_text.json"), secret=new_secret).status_code == 200


def test_the_command_refuses_an_unknown_channel(db):
    with pytest.raises(CommandError):
        call_command("telegram_set_webhook", "--channel", "nope")
