"""What a visitor's message costs the websocket process: statements per message, Redis round trips
for the rate limits (docs/performance.md, web chat)."""

from __future__ import annotations

import base64

import pytest
from django.core.cache import cache

from channels_inbound.webchat import services, tokens
from tests.channels_inbound.webchat.test_socket import PNG

pytestmark = pytest.mark.django_db(transaction=True)


def _visitor(chat) -> tokens.Visitor:
    return tokens.Visitor(channel_key=chat.channel.key, id=tokens.new_anonymous_id())


def test_a_follow_up_without_files_reads_no_attachments_back(chat, django_assert_num_queries):
    visitor = _visitor(chat)
    services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id="c-1", text="Hello")

    # Store, then in one transaction: identity, duplicate check, customer lock, ticket lock, entry,
    # ticket update, event processed. No SELECT of attachments for a message that brought none.
    with django_assert_num_queries(10):
        posted = services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id="c-2", text="Again")

    assert (posted.frame["text"], posted.frame["attachments"], posted.duplicate) == ("Again", [], False)


def test_a_message_with_a_file_and_a_repeated_id_still_show_their_files(chat):
    visitor = _visitor(chat)
    upload = [{"name": "photo.png", "data": base64.b64encode(PNG).decode()}]

    first = services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id="c-1", text="", attachments=upload)
    again = services.visitor_message_post(channel=chat.channel, visitor=visitor, client_id="c-1", text="", attachments=upload)

    assert [a["name"] for a in first.frame["attachments"]] == ["photo.png"]
    assert again.duplicate and again.frame["id"] == first.frame["id"]
    assert [a["name"] for a in again.frame["attachments"]] == ["photo.png"]  # read back from the database


def _round_trips(monkeypatch) -> list[int]:
    """Commands per Redis round trip of the cache's client (pipelines count once)."""
    import redis.client

    trips: list[int] = []
    real_execute, real_pipeline = redis.client.Redis.execute_command, redis.client.Pipeline.execute

    def execute_command(self, *args, **options):
        if not isinstance(self, redis.client.Pipeline):
            trips.append(1)
        return real_execute(self, *args, **options)

    def execute(self, *args, **kwargs):
        trips.append(len(self.command_stack))
        return real_pipeline(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Redis, "execute_command", execute_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    return trips


def test_both_rate_limits_cost_one_round_trip_and_each_refuses_on_its_own(chat, monkeypatch):
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match="*webchat-rate:*"):
        client.delete(key)
    trips = _round_trips(monkeypatch)

    first = services.rate_allow_all([("v:anna", 2), ("ip:203.0.113.9", 3)])
    assert trips == [4]  # SET NX EX and INCR for each counter, in one pipeline
    second = services.rate_allow_all([("v:anna", 2), ("ip:203.0.113.9", 3)])
    third = services.rate_allow_all([("v:anna", 2), ("ip:203.0.113.9", 3)])  # anna's third: over her 2
    other = services.rate_allow_all([("v:boris", 2), ("ip:203.0.113.9", 3)])  # the address's fourth

    assert (first, second, third, other) == (True, True, False, False)
    assert services.rate_allow_all([("v:boris", 2), ("ip:198.51.100.7", 3)])  # another address
