"""omnicenter/settings.py driven by the environment, each case in a fresh interpreter."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'embedded': s.EMBEDDED, 'debug': s.DEBUG, 'engine': s.DATABASES['default']['ENGINE'], "
    "'secret_key': s.SECRET_KEY, 'hosts': s.ALLOWED_HOSTS, 'eager': s.CELERY_TASK_ALWAYS_EAGER}))"
)


@pytest.fixture
def run(tmp_path):
    """Run Python in /work/main with exactly the given environment (plus PATH and a var dir)."""

    def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "omnicenter.settings",
            "OMNICENTER_VAR_DIR": str(tmp_path / "var"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return subprocess.run(
            [sys.executable, *args], cwd=settings.BASE_DIR, env={**base, **env},
            capture_output=True, text=True, timeout=120,
        )

    return run


def production_env() -> dict[str, str]:
    """What an operator sets for production mode, with the local PostgreSQL and Redis."""
    return {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "example.com",
    }


def loaded(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_nothing_set_is_the_embedded_mode_with_secrets_kept_in_the_var_dir(run, tmp_path):
    first = loaded(run(["-c", PRINT_SETTINGS]))
    second = loaded(run(["-c", PRINT_SETTINGS]))

    assert first["embedded"] is True
    assert first["engine"] == "django.db.backends.sqlite3"
    assert first["debug"] is True
    assert first["eager"] is True
    assert first["secret_key"] == second["secret_key"]  # sessions survive a restart
    assert len(first["secret_key"]) >= 50
    secret_file = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert (tmp_path / "var" / "field_encryption_key").exists()


@pytest.mark.parametrize("only", ["DATABASE_URL", "REDIS_URL"])
def test_only_one_of_the_two_urls_is_a_configuration_error_naming_both(run, only):
    result = run(["-c", PRINT_SETTINGS], **{only: production_env()[only]})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_URL" in result.stderr
    assert "REDIS_URL" in result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_production_mode_requires_its_secrets(run, missing):
    env = production_env()
    del env[missing]

    result = run(["-c", PRINT_SETTINGS], **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is required in production mode" in result.stderr


def test_production_mode_with_both_urls_uses_postgresql_and_real_workers(run):
    values = loaded(run(["-c", PRINT_SETTINGS], **production_env()))

    assert values["embedded"] is False
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["debug"] is False
    assert values["eager"] is False
    assert values["hosts"] == ["example.com"]


@pytest.mark.parametrize(("name", "value"), [("DEBUG", "maybe"), ("DB_CONN_MAX_AGE", "forever")])
def test_malformed_value_is_an_error_naming_the_variable(run, name, value):
    result = run(["-c", PRINT_SETTINGS], **{name: value}, **(production_env() if name.startswith("DB_") else {}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} must be" in result.stderr
    assert repr(value) in result.stderr


def test_secret_key_is_read_from_secret_key_file(run, tmp_path):
    secret = secrets.token_urlsafe(50)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    env = production_env()
    del env["SECRET_KEY"]

    values = loaded(run(["-c", PRINT_SETTINGS], **env, SECRET_KEY_FILE=str(secret_file)))

    assert values["secret_key"] == secret


def test_unreadable_secret_file_is_an_error_naming_it(run, tmp_path):
    missing = tmp_path / "nope"

    result = run(["-c", PRINT_SETTINGS], **production_env(), SECRET_KEY_FILE=str(missing))

    assert result.returncode != 0
    assert "SECRET_KEY_FILE" in result.stderr
    assert str(missing) in result.stderr


def test_deploy_check_passes_with_the_production_defaults(run):
    result = run([str(Path(settings.BASE_DIR) / "manage.py"), "check", "--deploy"], **production_env())

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_deploy_check_flags_debug_left_on_in_production(run):
    result = run([str(Path(settings.BASE_DIR) / "manage.py"), "check", "--deploy"], **production_env(), DEBUG="1")

    assert "security.W018" in result.stdout + result.stderr


def test_production_mode_runs_the_websocket_process_without_persistent_database_connections():
    """A connection kept per consumer thread exhausted PostgreSQL at a few hundred widget sockets."""
    from omnicenter.management.commands.run_production import process_environment

    env = {"DATABASE_URL": "postgres://db/x", "DB_CONN_MAX_AGE": "60"}

    assert process_environment("ws", env)["DB_CONN_MAX_AGE"] == "0"
    assert process_environment("web", env)["DB_CONN_MAX_AGE"] == "60"
    assert process_environment("worker", env) is env
    assert process_environment("ws", {**env, "WS_DB_CONN_MAX_AGE": "5"})["DB_CONN_MAX_AGE"] == "5"


def _uvicorn_options(args: list[str]) -> dict:
    """What uvicorn's own command line makes of `args` (click parses them as `uvicorn` would)."""
    from uvicorn.main import main

    return main.make_context("uvicorn", list(args)).params


def test_the_websocket_process_negotiates_no_per_message_deflate_in_either_deployment():
    """A zlib compressor and decompressor per socket were half of an idle chat socket's memory."""
    import yaml

    from omnicenter.management.commands.run_production import WS_OPTIONS

    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    compose_args = compose["services"]["ws"]["command"][1:]

    assert _uvicorn_options(["omnicenter.asgi:application", *WS_OPTIONS])["ws_per_message_deflate"] is False
    assert _uvicorn_options(compose_args)["ws_per_message_deflate"] is False
    assert _uvicorn_options(["omnicenter.asgi:application"])["ws_per_message_deflate"] is True  # uvicorn's default


LAYER = "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(s.CHANNEL_LAYERS['default']))"


def test_production_mode_uses_the_pub_sub_channel_layer_unless_core_is_asked_for(run):
    default = loaded(run(["-c", LAYER], **production_env()))
    core = loaded(run(["-c", LAYER], **production_env(), CHANNEL_LAYER="core"))

    assert default["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert core["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert core["CONFIG"]["capacity"] == 2000
