"""A listener on the channel layer, like a connected socket, for tests that check who receives an
event. It works with both channels_redis layers: the pub/sub layer (the default) keeps a channel
and its group subscriptions per event loop, so the listener owns one loop, in a thread of its own,
for its whole life, instead of a new loop for each `async_to_sync` call."""

from __future__ import annotations

import asyncio
import threading

from channels.layers import get_channel_layer


class Listener:
    def __init__(self, *groups: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-layer-listener", daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.groups: list[str] = []
        self.name = self._run(self.layer.new_channel())
        self.add(*groups)

    def _run(self, coroutine, timeout: float = 15.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def add(self, *groups: str) -> None:
        for group in groups:
            self._run(self.layer.group_add(group, self.name))
            self.groups.append(group)

    def receive(self, timeout: float = 10.0) -> dict | None:
        """The next message for this listener, or None if nothing came within `timeout`."""

        async def _receive():
            try:
                return await asyncio.wait_for(self.layer.receive(self.name), timeout)
            except TimeoutError:
                return None

        return self._run(_receive(), timeout + 15)

    def close(self) -> None:
        for group in self.groups:
            self._run(self.layer.group_discard(group, self.name))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()  # the pub/sub layer closes this loop's Redis connections with it

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
