from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.channels_inbound.meta.stub import running_stub
from tests.factories import make_channel

FIXTURES = Path(__file__).resolve().parents[3] / "channels_inbound" / "meta" / "fixtures"
PAGE_ID = "104578562110301"
PSID = "6620112233445566"
IG_ACCOUNT = "17841405822304914"
IGSID = "1143578293461852"
APP_SECRET = "8f1c2e7d9a3b4c5d6e7f8091a2b3c4d5"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAPageTokenForTests"


def load(name: str, *, now: bool = True) -> dict:
    """A recorded payload; with `now`, its timestamps moved to the present (the window counts)."""
    payload = json.loads((FIXTURES / name).read_text())
    if now:
        ms = int(time.time() * 1000)
        for entry in payload["entry"]:
            entry["time"] = ms
            for item in entry.get("messaging", []):
                item["timestamp"] = ms
    return payload


def at(payload: dict, ms: int) -> dict:
    payload = copy.deepcopy(payload)
    for entry in payload["entry"]:
        for item in entry.get("messaging", []):
            item["timestamp"] = ms
    return payload


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """X-Hub-Signature-256 exactly as Meta computes it: sha256= and the hex HMAC of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class MetaChannel:
    channel: object

    @property
    def url(self) -> str:
        return f"/webhooks/meta/{self.channel.key}"


def messenger_settings(**overrides) -> dict:
    return {"page_id": PAGE_ID, "page_access_token": PAGE_TOKEN, "app_secret": APP_SECRET,
            "verify_token": "my-verify-token", **overrides}


@pytest.fixture
def routed_stub():
    yield from running_stub()


@pytest.fixture
def graph(routed_stub, settings):
    """The Graph API (and Meta's CDN) as a local server."""
    settings.META_GRAPH_URL = routed_stub.url("/v21.0")
    routed_stub.route("/v21.0/me/messages", json={"recipient_id": PSID, "message_id": "m_out_1"})
    routed_stub.route(f"/v21.0/{PSID}", json={"first_name": "Anna", "last_name": "Nowak", "id": PSID})
    routed_stub.route(f"/v21.0/{IGSID}", json={"name": "Ola Wiśniewska", "username": "ola.w", "id": IGSID})
    return routed_stub


@pytest.fixture
def messenger(people, graph) -> MetaChannel:
    channel, _generated = make_channel(kind="messenger", name="Shop page", settings_data=messenger_settings(),
                                       default_team=people.team_a)
    return MetaChannel(channel)


@pytest.fixture
def instagram(people, graph) -> MetaChannel:
    channel, _generated = make_channel(
        kind="instagram", name="Shop Instagram", default_team=people.team_a,
        settings_data={**messenger_settings(page_id=""), "instagram_account_id": IG_ACCOUNT},
    )
    return MetaChannel(channel)


@pytest.fixture
def post_meta(client, django_capture_on_commit_callbacks):
    """POST a payload as Meta does (raw JSON, signed), running the spine after commit."""

    def post(target: MetaChannel, payload: dict | bytes, *, secret: str = APP_SECRET, signature: str | None = None,
             url: str | None = None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {} if signature == "" else {"HTTP_X_HUB_SIGNATURE_256": signature or sign(body, secret)}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url or target.url, data=body, content_type="application/json", **headers)

    return post
