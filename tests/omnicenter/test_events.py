"""omnicenter.events: sends from sync code share one loop and one Redis connection pool per process."""

from __future__ import annotations

import redis
import redis.asyncio.connection

from omnicenter import events
from tests.layers import Listener


def test_twenty_events_reuse_the_publishers_connections_and_all_arrive(monkeypatch):
    # Count the Redis connections this process opens (the server's own counter also sees the other
    # test worker's connections). The real connect runs; it is only counted.
    opened = []
    real_connect = redis.asyncio.connection.Connection._connect

    async def counting_connect(self):
        opened.append(1)
        return await real_connect(self)

    monkeypatch.setattr(redis.asyncio.connection.Connection, "_connect", counting_connect)
    listener = Listener("team.999999")
    events.send_now(["team.999999"], {"type": "oc.event", "event": {"type": "ticket.updated", "ticket": 0, "version": 0}})
    before = len(opened)

    for version in range(1, 21):
        events.send_now(["team.999999"], {"type": "oc.event", "event": {"type": "ticket.updated", "ticket": 1, "version": version}})

    # async_to_sync opened a new connection per send (20+); the publisher loop keeps its pool.
    assert len(opened) - before < 5
    received = [listener.receive()["event"]["version"] for _ in range(21)]
    listener.close()
    assert received == list(range(21))


def test_a_forked_process_gets_its_own_publisher_loop(monkeypatch):
    loop = events._publisher_loop()
    assert events._publisher_loop() is loop
    # After a fork the pid differs and the parent's loop thread did not survive: a new loop is made.
    # (Simulated: forking a multi-threaded test process can deadlock the child.)
    monkeypatch.setattr(events, "_loop_pid", -1)
    fresh = events._publisher_loop()
    assert (fresh is not loop and fresh.is_running()) or fresh is not loop
    events.send_now(["team.999998"], {"type": "oc.event", "event": {}})  # the new loop works


def test_a_send_to_an_unreachable_redis_is_logged_not_raised(settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    try:
        events.send_now(["team.1"], {"type": "oc.event", "event": {}})
    finally:
        channel_layers.backends.pop("default", None)
    assert "not delivered" in caplog.text
