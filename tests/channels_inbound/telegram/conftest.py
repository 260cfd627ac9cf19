from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.channels_inbound.meta.stub import running_stub
from tests.factories import make_channel

FIXTURES = Path(__file__).resolve().parents[3] / "channels_inbound" / "telegram" / "fixtures"
BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
USER_ID = "5512340987"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5d1c3a40000000049454e44ae426082"
)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class TelegramChannel:
    channel: object
    secret_token: str

    @property
    def url(self) -> str:
        return f"/webhooks/telegram/{self.channel.key}"


@pytest.fixture
def bot_api(settings):
    """The Bot API (methods and file downloads) as a local server."""
    for stub in running_stub():
        settings.TELEGRAM_API_URL = stub.base_url
        stub.route(f"/bot{BOT_TOKEN}/sendMessage", json={"ok": True, "result": {
            "message_id": 501, "chat": {"id": int(USER_ID), "type": "private"}, "date": 1763800500, "text": "…"}})
        stub.route(f"/bot{BOT_TOKEN}/sendPhoto", json={"ok": True, "result": {
            "message_id": 502, "chat": {"id": int(USER_ID), "type": "private"}, "date": 1763800500}})
        stub.route(f"/bot{BOT_TOKEN}/sendDocument", json={"ok": True, "result": {
            "message_id": 503, "chat": {"id": int(USER_ID), "type": "private"}, "date": 1763800500}})
        stub.route(f"/bot{BOT_TOKEN}/getFile", json={"ok": True, "result": {
            "file_id": "x", "file_unique_id": "y", "file_size": len(PNG), "file_path": "photos/file_7.jpg"}})
        stub.route(f"/file/bot{BOT_TOKEN}/", body=PNG, content_type="application/octet-stream")
        stub.route(f"/bot{BOT_TOKEN}/getMe", json={"ok": True, "result": {
            "id": 7012345678, "is_bot": True, "first_name": "Shop", "username": "shop_help_bot"}})
        stub.route(f"/bot{BOT_TOKEN}/answerCallbackQuery", json={"ok": True, "result": True})
        stub.route(f"/bot{BOT_TOKEN}/setWebhook", json={"ok": True, "result": True, "description": "Webhook was set"})
        yield stub


@pytest.fixture
def telegram(people, bot_api) -> TelegramChannel:
    channel, generated = make_channel(kind="telegram", name="Shop bot", settings_data={"bot_token": BOT_TOKEN},
                                      default_team=people.team_a)
    return TelegramChannel(channel, generated["secret_token"])


@pytest.fixture
def post_update(client, django_capture_on_commit_callbacks):
    """POST an update as Telegram does: JSON with the secret token header."""

    def post(target: TelegramChannel, update: dict | bytes, *, secret: str | None = None, url: str | None = None):
        body = update if isinstance(update, bytes) else json.dumps(update).encode()
        headers = {} if secret == "" else {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret or target.secret_token}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url or target.url, data=body, content_type="application/json", **headers)

    return post
