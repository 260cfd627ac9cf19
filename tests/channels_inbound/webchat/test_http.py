"""The widget script, the visitor session endpoint, channel settings and business hours."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from channels_inbound.webchat import services, tokens
from channels_inbound.webchat.adapter import is_open
from tests.channels_inbound.webchat.conftest import SITE

pytestmark = pytest.mark.django_db

WIDGET_GZIP_LIMIT = 40 * 1024


def post_session(client, chat, body: dict, *, origin: str = SITE):
    return client.post(f"/widget/{chat.channel.key}/session", data=json.dumps(body), content_type="application/json",
                       HTTP_ORIGIN=origin)


def test_the_widget_script_is_small_plain_js_with_the_channel_look(client, chat, django_assert_num_queries):
    chat.channel.settings = {**chat.channel.settings, "color": "#ff5500", "team_name": "Shop team", "language": "pl"}
    chat.channel.save(update_fields=["settings"])

    with django_assert_num_queries(1):
        response = client.get(f"/widget/{chat.channel.key}.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = response.content
    assert len(gzip.compress(body, compresslevel=9)) < WIDGET_GZIP_LIMIT
    text = body.decode()
    assert '"color": "#ff5500"' in text and '"team": "Shop team"' in text
    assert "attachShadow" in text  # the host page's CSS cannot reach into the widget
    assert "import " not in text.split("\n", 3)[-1][:200]  # a classic script, no modules or framework


def test_the_script_is_cacheable_and_changes_with_the_settings(client, chat):
    first = client.get(f"/widget/{chat.channel.key}.js")
    assert "max-age" in first["Cache-Control"] and first["ETag"]

    again = client.get(f"/widget/{chat.channel.key}.js", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304

    chat.channel.settings = {**chat.channel.settings, "color": "#000000"}
    chat.channel.save(update_fields=["settings"])
    changed = client.get(f"/widget/{chat.channel.key}.js", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]


def test_an_unknown_channel_has_no_script(client, chat):
    assert client.get("/widget/nope.js").status_code == 404


def test_a_session_gives_an_anonymous_token_and_keeps_it(client, chat):
    response = post_session(client, chat, {})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    token = response.json()["token"]
    visitor = tokens.read(token, channel_key=chat.channel.key)
    assert visitor.id.startswith("anon:") and response.json()["verified"] is False

    renewed = post_session(client, chat, {"token": token}).json()["token"]
    assert tokens.read(renewed, channel_key=chat.channel.key) == visitor


def test_the_preflight_is_answered_for_allowed_sites_only(client, chat):
    ok = client.options(f"/widget/{chat.channel.key}/session", HTTP_ORIGIN=SITE)
    refused = client.options(f"/widget/{chat.channel.key}/session", HTTP_ORIGIN="https://evil.example.net")

    assert ok.status_code == 204 and ok["Access-Control-Allow-Origin"] == SITE
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused


def test_a_site_verified_user_gets_a_verified_token_and_a_wrong_hash_is_refused(client, chat):
    good = post_session(client, chat, {"user_id": "42", "user_hash": tokens.identity_hash(chat.identity_secret, "42")})
    wrong = post_session(client, chat, {"user_id": "43", "user_hash": tokens.identity_hash(chat.identity_secret, "42")})

    assert good.status_code == 200 and good.json()["verified"] is True
    assert tokens.read(good.json()["token"], channel_key=chat.channel.key).id == "user:42"
    assert wrong.status_code == 403


def test_a_verified_token_without_the_hash_becomes_a_new_anonymous_visitor(client, chat):
    verified = tokens.issue(tokens.Visitor(channel_key=chat.channel.key, id="user:42"))

    token = post_session(client, chat, {"token": verified}).json()["token"]

    assert tokens.read(token, channel_key=chat.channel.key).id.startswith("anon:")


def test_new_sessions_per_address_are_limited(client, chat, settings):
    settings.WEBCHAT_RATE_SESSIONS_IP = 2
    codes = [post_session(client, chat, {}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_returning_verified_visitor_gets_a_personal_greeting(chat):
    from channels_inbound.base import NormalizedMessage
    from channels_inbound.services import message_ingest
    from channels_inbound.webchat.adapter import visitor_claim

    visitor = tokens.Visitor(channel_key=chat.channel.key, id="user:42")
    assert services.greeting_for(channel=chat.channel, visitor=visitor, identity=None) == "Hello from the shop!"
    message_ingest(channel=chat.channel, message=NormalizedMessage(
        provider_message_id="user:42:x", sender=[visitor_claim(chat.channel, "user:42", display_name="Ewa")], text="hi"))

    identity = services.visitor_identity(visitor)
    assert services.greeting_for(channel=chat.channel, visitor=visitor, identity=identity) == "Good to see you again, Ewa!"


def test_creating_a_webchat_channel_shows_the_identity_secret_once(api_as, people):
    api = api_as(people.admin)
    response = api.post("/api/v1/channels/", {
        "kind": "webchat", "name": "Site", "settings": {
            "allowed_origins": ["HTTPS://Shop.Example.com:443/", "http://localhost:8080"],
            "business_hours": {"timezone": "Europe/Warsaw", "days": {"mon": ["09:00-17:00"]}},
            "prechat": {"email": "required"},
        },
    }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert len(body["secrets"]["identity_secret"]) >= 40
    assert body["settings"]["allowed_origins"] == ["https://shop.example.com", "http://localhost:8080"]
    assert set(body["webhook_urls"]) == {"script", "session", "websocket"}
    shown = api.get(f"/api/v1/channels/{body['key']}/").json()
    assert "identity_secret" not in json.dumps(shown)


@pytest.mark.parametrize("bad", [
    {"allowed_origins": ["shop.example.com"]},
    {"allowed_origins": ["https://shop.example.com/path"]},
    {"allowed_origins": [SITE], "business_hours": {"timezone": "Mars/Base", "days": {}}},
    {"allowed_origins": [SITE], "business_hours": {"days": {"mon": ["17:00-09:00"]}}},
    {"allowed_origins": [SITE], "color": "red"},
    {"allowed_origins": [SITE], "prechat": {"email": "always"}},
    {"allowed_origins": [SITE], "secret_sauce": "x"},
])
def test_bad_settings_are_refused_with_field_errors(api_as, people, bad):
    response = api_as(people.admin).post("/api/v1/channels/", {"kind": "webchat", "name": "Site", "settings": bad}, format="json")
    assert response.status_code == 400
    assert "settings" in response.json()


def test_business_hours_in_the_channels_time_zone():
    conf = {"business_hours": {"timezone": "Europe/Warsaw", "days": {"mon": ["09:00-17:00"]}}}
    utc = ZoneInfo("UTC")
    assert is_open(conf, datetime(2026, 11, 23, 8, 30, tzinfo=utc))  # Monday 9:30 in Warsaw
    assert not is_open(conf, datetime(2026, 11, 23, 7, 30, tzinfo=utc))  # 8:30 there
    assert not is_open(conf, datetime(2026, 11, 24, 10, 0, tzinfo=utc))  # Tuesday
    assert is_open({}, datetime(2026, 11, 24, 3, 0, tzinfo=utc))  # no hours: always open


def test_an_agent_typing_hint_needs_a_signed_in_agent(client, chat):
    response = client.post("/app/webchat/tickets/1/typing/")
    assert response.status_code == 302


def fallback(client, chat, path: str, body: dict, *, origin: str = SITE):
    return client.post(f"/widget/{chat.channel.key}/{path}", data=json.dumps(body), content_type="application/json",
                       HTTP_ORIGIN=origin)


def test_without_websockets_a_visitor_sends_and_polls_over_http(client, chat, people):
    from tickets.models import TimelineEntry
    from tickets.services import ticket_reply

    token = post_session(client, chat, {}).json()["token"]

    first = fallback(client, chat, "send", {"token": token, "frame": {"type": "message", "id": "h-1", "text": "No sockets here"}})
    again = fallback(client, chat, "send", {"token": token, "frame": {"type": "message", "id": "h-1", "text": "No sockets here"}})

    assert first.status_code == 200 and first.json()["type"] == "ack" and first["Access-Control-Allow-Origin"] == SITE
    assert again.json()["duplicate"] is True
    assert TimelineEntry.objects.count() == 1
    mine = first.json()["message"]["id"]
    ticket_reply(ticket=TimelineEntry.objects.get().ticket, by=people.agent_a, text="Polling works too.")
    polled = fallback(client, chat, "poll", {"token": token, "after": mine}).json()
    assert polled["type"] == "ready"
    assert [m["text"] for m in polled["history"]] == ["Polling works too."]


def test_the_http_fallback_checks_origin_token_and_input(client, chat):
    token = post_session(client, chat, {}).json()["token"]

    assert fallback(client, chat, "poll", {"token": token}, origin="https://evil.example.net").status_code == 403
    assert fallback(client, chat, "poll", {"token": "forged"}).status_code == 401
    bad = fallback(client, chat, "send", {"token": token, "frame": {"type": "message", "id": "x", "text": ""}})
    assert bad.status_code == 400 and bad.json()["code"] == "empty"
    assert fallback(client, chat, "send", {"token": token, "frame": {"type": "auth"}}).status_code == 400


def test_a_color_that_is_not_a_color_never_reaches_the_widget_css(client, chat):
    chat.channel.settings = {**chat.channel.settings, "color": "red}*{display:none"}
    chat.channel.save(update_fields=["settings"])

    body = client.get(f"/widget/{chat.channel.key}.js").content.decode()

    assert "display:none\"" not in body and '"color": "#2563eb"' in body


def test_the_socket_ingest_path_and_the_history_cost_a_bounded_number_of_queries(chat, django_assert_max_num_queries,
                                                                                 django_assert_num_queries):
    visitor = tokens.Visitor(channel_key=chat.channel.key, id=tokens.new_anonymous_id())
    services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id="q-0", text="first")

    with django_assert_max_num_queries(14):
        services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id="q-1", text="second")
    # The messages, their attachments, and whether the visitor confirmed an email by a code (which
    # would widen the history to their customer's other chats on this channel).
    with django_assert_num_queries(3):
        short = services.conversation_history(visitor=visitor)
    for i in range(2, 8):
        services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id=f"q-{i}", text=f"more {i}")
    with django_assert_num_queries(3):
        long = services.conversation_history(visitor=visitor)
    assert (len(short), len(long)) == (2, 8)
