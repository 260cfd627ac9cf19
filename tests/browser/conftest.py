"""Playwright driving Debian's Chromium (/usr/bin/chromium), one browser per session (per xdist
worker). Playwright never downloads a browser here: it launches that executable.

Playwright's sync API marks its event loop as running in the test's thread between calls. With
that mark set, Django refuses database access in the thread (unless DJANGO_ALLOW_ASYNC_UNSAFE is
set) and asgiref's async_to_sync refuses to run, which would silently drop the live events that
on_commit publishes from this thread in later tests. So the mark is only left set while a browser
test runs (the `page` fixture), and DJANGO_ALLOW_ASYNC_UNSAFE only during browser tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
TIMEOUT_MS = 15_000  # how long a page may take to show something; a bound on waiting, not a speed requirement


@dataclass
class Chromium:
    browser: object
    loop: asyncio.AbstractEventLoop


@pytest.fixture(autouse=True)
def _django_in_playwrights_thread(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    loop = asyncio.get_running_loop()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except BaseException:
        playwright.stop()
        raise
    asyncio._set_running_loop(None)
    try:
        yield Chromium(browser=browser, loop=loop)
    finally:
        asyncio._set_running_loop(loop)
        try:
            browser.close()
        finally:
            playwright.stop()
            asyncio._set_running_loop(None)


@pytest.fixture
def page(chromium: Chromium, asgi_server):
    """A fresh browser context (no cookies) on the ASGI test server; relative URLs go there."""
    from playwright.sync_api import expect

    asyncio._set_running_loop(chromium.loop)
    context = chromium.browser.new_context(base_url=asgi_server.url, locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield page
    finally:
        context.close()
        asyncio._set_running_loop(None)
