"""An `http_stub` that answers by path: Graph API calls, CDN downloads and Bot API methods each
get their own answer from one local server."""

from __future__ import annotations

from collections.abc import Iterator

from tests.httpserver import HttpStub, Reply


class RoutedStub(HttpStub):
    """`route(fragment, ...)` answers requests whose path contains `fragment` (latest route wins);
    others get the `respond()` answer."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, Reply]] = []
        super().__init__()

    @property
    def reply(self) -> Reply:
        # Read by the handler under the lock, right after it recorded the request.
        path = self.requests[-1].path if self.requests else ""
        for fragment, reply in reversed(self.routes):
            if fragment in path:
                return reply
        return self._default

    @reply.setter
    def reply(self, value: Reply) -> None:
        self._default = value

    def route(self, fragment: str, **kwargs) -> None:
        default = self._default
        self.respond(**kwargs)
        with self._lock:
            self.routes.append((fragment, self._default))
            self._default = default

    def calls(self, fragment: str) -> list:
        return [r for r in self.requests if fragment in r.path]



def running_stub() -> Iterator[RoutedStub]:
    """Use as a fixture body: `yield from running_stub()`."""
    stub = RoutedStub().start()
    try:
        yield stub
    finally:
        stub.stop()
