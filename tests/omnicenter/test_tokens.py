"""API tokens: `manage.py create_api_token`, hashed storage, `Authorization: Token <key>`, scopes."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from channels_inbound.models import Channel
from omnicenter.models import ApiToken
from omnicenter.services import api_token_revoke
from tests.factories import UserFactory


def create_token(username: str, *args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", username, *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def api_with(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


@pytest.mark.django_db
def test_command_prints_a_new_key_each_time(people):
    first = create_token("agent_a", "--scope", "staff")
    second = create_token("agent_a", "--scope", "staff")

    assert first != second
    assert first.startswith("oc_")
    assert len(first) > 40
    assert "\n" not in first  # the key alone on stdout, so scripts can capture it
    assert ApiToken.objects.filter(user=people.agent_a).count() == 2


@pytest.mark.django_db
def test_command_stores_name_and_scope(people):
    create_token("admin", "--name", "CRM sync", "--read-only", "--scope", "customers,tickets", "--scope", "kb")
    create_token("admin", "--all-scopes")

    assert sorted(ApiToken.objects.values_list("name", "read_only", "scopes")) == [
        ("CRM sync", True, ["kb", "customers", "tickets"]),
        ("cli", False, ["kb", "catalog", "customers", "tickets", "channels", "staff"]),
    ]


@pytest.mark.django_db
def test_database_holds_only_the_sha256_of_the_key(people):
    key = create_token("agent_a", "--scope", "staff")

    token = ApiToken.objects.get()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    for field in ApiToken._meta.concrete_fields:
        assert key not in str(getattr(token, field.attname)), field.name
    assert key.startswith(token.prefix)  # a short prefix is kept so people can tell tokens apart


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["nobody", "plain", "former"])
def test_command_refuses_unknown_users_and_users_without_a_staff_role(people, username):
    UserFactory(username="plain")
    UserFactory(username="former", role="agent", is_active=False)

    with pytest.raises(CommandError):
        create_token(username, "--all-scopes")

    assert ApiToken.objects.count() == 0


@pytest.mark.django_db
def test_token_header_authenticates_api_calls(people):
    key = create_token("agent_a", "--scope", "staff")

    response = api_with(key).get("/api/v1/users/me/")

    assert response.status_code == 200
    assert response.json()["username"] == "agent_a"


@pytest.mark.django_db
def test_api_without_credentials_is_401():
    response = APIClient().get("/api/v1/users/me/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_revoked_token_gets_401(people):
    key = create_token("agent_a", "--scope", "staff")
    api_token_revoke(token=ApiToken.objects.get())

    response = api_with(key).get("/api/v1/users/me/")

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked token."


@pytest.mark.django_db
def test_token_of_a_deactivated_user_gets_401(people):
    key = create_token("agent_a", "--scope", "staff")
    people.agent_a.is_active = False
    people.agent_a.save(update_fields=["is_active"])

    assert api_with(key).get("/api/v1/users/me/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Token", "Token a b", "Token oc_not-a-real-key", "token"])
def test_malformed_or_unknown_token_header_gets_401(people, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get("/api/v1/users/me/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_read_only_token_reads_but_cannot_write(people):
    read_only = api_with(create_token("admin", "--read-only", "--all-scopes"))
    full = api_with(create_token("admin", "--all-scopes"))
    new_channel = {"kind": "api", "name": "CRM"}

    assert read_only.get("/api/v1/tickets/").status_code == 200
    assert read_only.get("/api/v1/channels/").status_code == 200
    assert read_only.post("/api/v1/channels/", new_channel, format="json").status_code == 403
    assert Channel.objects.count() == 0
    assert full.post("/api/v1/channels/", new_channel, format="json").status_code == 201
    assert Channel.objects.count() == 1


@pytest.mark.django_db
def test_token_keeps_its_users_permissions(people):
    agent = api_with(create_token("agent_a", "--all-scopes"))

    assert agent.get("/api/v1/tickets/").status_code == 200
    assert agent.post("/api/v1/channels/", {"kind": "api", "name": "CRM"}, format="json").status_code == 403


@pytest.mark.django_db
def test_last_use_is_recorded_but_not_rewritten_within_a_minute(people):
    api = api_with(create_token("agent_a", "--scope", "staff"))
    token = ApiToken.objects.get()
    assert token.last_used_at is None

    with CaptureQueriesContext(connection) as first:
        assert api.get("/api/v1/users/me/").status_code == 200
    token.refresh_from_db()
    recorded = token.last_used_at
    with CaptureQueriesContext(connection) as second:
        assert api.get("/api/v1/users/me/").status_code == 200
    token.refresh_from_db()

    assert recorded is not None
    assert timezone.now() - recorded < timedelta(minutes=1)
    assert token.last_used_at == recorded
    assert len(second) == len(first) - 1  # the same request without the UPDATE
    assert any(q["sql"].startswith("UPDATE") and "omnicenter_apitoken" in q["sql"] for q in first.captured_queries)
    assert not any(q["sql"].startswith("UPDATE") for q in second.captured_queries)


@pytest.mark.django_db
def test_last_use_is_rewritten_after_a_minute(people):
    api = api_with(create_token("agent_a", "--scope", "staff"))
    long_ago = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.update(last_used_at=long_ago)

    api.get("/api/v1/users/me/")

    assert ApiToken.objects.get().last_used_at > long_ago + timedelta(minutes=4)
