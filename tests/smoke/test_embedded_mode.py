"""The embedded default from zero: no DATABASE_URL, no REDIS_URL, SQLite in a fresh var dir, one
uvicorn process serving HTTP with Celery tasks run in-process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.ports import free_port, stop

pytestmark = pytest.mark.xdist_group("smoke")

BASE_DIR = Path(settings.BASE_DIR)
# Everything tests/settings.py puts in the environment: the embedded default runs without any of it.
TEST_VARIABLES = (
    "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DEBUG",
    "ALLOWED_HOSTS", "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SQLITE_PATH",
    "STATIC_ROOT", "MEDIA_ROOT",
)


@dataclass
class Embedded:
    env: dict[str, str]
    var_dir: Path

    @property
    def database(self) -> Path:
        return self.var_dir / "omnicenter.sqlite3"

    def manage(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )

    def shell(self, code: str) -> str:
        result = self.manage("shell", "--verbosity", "0", "--command", code)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@pytest.fixture
def embedded(tmp_path) -> Embedded:
    env = {k: v for k, v in os.environ.items() if k not in TEST_VARIABLES}
    env["OMNICENTER_VAR_DIR"] = str(tmp_path / "var")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return Embedded(env=env, var_dir=tmp_path / "var")


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {}),
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def body_if(status: int, answer: tuple[int, dict], key: str | None = None) -> dict | None:
    """The body of an answer with that status (and a truthy `key`), else None: something to poll for."""
    if answer[0] != status or (key and not answer[1][key]):
        return None
    return answer[1]


def wait_for(check, *, seconds: float, what: str, server: subprocess.Popen | None = None, log: Path | None = None):
    """Poll `check` until it returns something truthy; fail with the server's log otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode} while waiting for {what}:\n{log.read_text()}")
        try:
            result = check()
        except (OSError, ValueError):
            result = None
        if result:
            return result
        time.sleep(0.3)
    pytest.fail(f"gave up waiting for {what}" + (f":\n{log.read_text()}" if log else ""))


def test_embedded_default_starts_from_zero_and_runs_the_spine(embedded, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "run_embedded", "--host", "127.0.0.1", "--port", str(port), "--no-demo"],
            cwd=BASE_DIR, env=embedded.env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        # Given the embedded default started on an empty var dir
        health = wait_for(lambda: body_if(200, http("GET", f"{base}/healthz")),
                          seconds=60, what="/healthz", server=server, log=log)
        assert health["mode"] == "embedded"
        assert health["database"] == "ok"
        assert health["redis"] == "not_configured"
        assert health["workers"] == {"state": "in_process"}
        assert health["inbound"] == {"waiting": 0, "oldest_age_seconds": None, "dead": 0}
        with sqlite3.connect(embedded.database) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=10) as page:
            assert page.status == 200
        with urllib.request.urlopen(f"{base}/static/css/app.css", timeout=10) as stylesheet:
            assert stylesheet.status == 200  # static files are served without collectstatic

        # And a staff user, an api channel and a token made with the management commands
        created = json.loads(embedded.shell(
            "import json\n"
            "from omnicenter.models import User\n"
            "from omnicenter.services import user_set_role\n"
            "from channels_inbound.services import channel_create\n"
            "user = User.objects.create_user(username='smoke', password='smoke-pass-1234')\n"
            "user_set_role(user=user, role='admin')\n"
            "channel, generated = channel_create(kind='api', name='Smoke API')\n"
            "print(json.dumps({'key': channel.key, 'secret': generated['secret']}))"
        ).splitlines()[-1])
        token_run = embedded.manage("create_api_token", "smoke", "--name", "smoke test")
        assert token_run.returncode == 0, token_run.stderr
        token = token_run.stdout.strip()

        # When an integrator posts a message to the running server
        status, answer = http(
            "POST", f"{base}/api/v1/channels/{created['key']}/inbound",
            {"id": "smoke-1", "from": {"email": "smoke@example.com", "name": "Smoke Tester"}, "text": "Hello from SQLite"},
            {"Authorization": f"Bearer {created['secret']}"},
        )
        assert (status, answer["duplicate"]) == (202, False)

        # Then the in-process worker turns it into a ticket the REST API shows
        auth = {"Authorization": f"Token {token}"}
        tickets = wait_for(lambda: body_if(200, http("GET", f"{base}/api/v1/tickets/", headers=auth), "count"),
                           seconds=30, what="the ticket", server=server, log=log)
        assert tickets["count"] == 1
        ticket = tickets["results"][0]
        assert ticket["customer"]["display_name"] == "Smoke Tester"
        status, timeline = http("GET", f"{base}/api/v1/tickets/{ticket['id']}/messages/", headers=auth)
        assert status == 200
        assert [entry["text"] for entry in timeline["results"]] == ["Hello from SQLite"]
        assert http("GET", f"{base}/healthz")[1]["inbound"]["waiting"] == 0
    finally:
        if not stop(server, timeout=30):
            pytest.fail(f"the server did not stop within 30 s of SIGTERM:\n{log.read_text()}")

    # A clean stop: uvicorn shut down gracefully; it then re-raises the SIGTERM it caught, as it should.
    output = log.read_text()
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Finished server process" in output
    assert "Traceback" not in output


def test_migrations_apply_from_zero_on_sqlite(embedded):
    result = embedded.manage("migrate", "--no-input")

    assert result.returncode == 0, result.stderr
    assert embedded.manage("migrate", "--check").returncode == 0  # nothing left unapplied
    with sqlite3.connect(embedded.database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"omnicenter_user", "omnicenter_apitoken", "channels_inbound_inboundevent", "customers_customer",
            "tickets_ticket"} <= tables


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # Exits with status 1 (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


COUNT_ROWS = (
    "import json\n"
    "from django.apps import apps\n"
    "ours = ('omnicenter', 'customers', 'channels_inbound', 'tickets', 'knowledge', 'catalog', 'auth')\n"
    "print(json.dumps({m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.app_label in ours}))"
)


def test_demo_data_twice_on_the_embedded_database_changes_nothing_the_second_time(embedded):
    assert embedded.manage("migrate", "--no-input").returncode == 0
    first_run = embedded.manage("demo_data")
    assert first_run.returncode == 0, first_run.stderr
    after_first = json.loads(embedded.shell(COUNT_ROWS).splitlines()[-1])

    second_run = embedded.manage("demo_data")

    assert second_run.returncode == 0, second_run.stderr
    after_second = json.loads(embedded.shell(COUNT_ROWS).splitlines()[-1])
    assert after_second == after_first
    for label in ("omnicenter.User", "customers.Customer", "tickets.Ticket", "tickets.TimelineEntry",
                  "channels_inbound.Channel"):
        assert after_first[label] > 0, label

    # The knowledge base's and the catalog's simpler search works on SQLite (no tsvector, no pg_trgm).
    found = json.loads(embedded.shell(SEARCH_ON_SQLITE).splitlines()[-1])
    assert found["vendor"] == "sqlite"
    assert found["kb"][0] == "Как отследить заказ"  # "заказы": the word's start matches "заказ"
    assert "<mark>" in found["snippet"]
    assert found["catalog"][0] == "RTR-AX3000"  # "wirless router": a typo and a word of the name


SEARCH_ON_SQLITE = """
import json
from django.db import connection
from catalog.models import Product
from catalog.search import search_product_ids
from knowledge import search, selectors
hits = list(search.search(selectors.readable_translations(None), q="заказы", language="ru"))
ids = search_product_ids("wirless router")
skus = dict(Product.objects.filter(pk__in=ids).values_list("pk", "sku"))
print(json.dumps({"vendor": connection.vendor, "kb": [t.title for t in hits],
                  "snippet": search.snippets(hits[:1], q="заказы", language="ru")[hits[0].pk],
                  "catalog": [skus[pk] for pk in ids]}))
"""
