"""API token scopes: each /api/v1/ view declares the scope a token needs, token requests outside the
token's scopes get 403, views that declare nothing refuse tokens, sessions are unaffected."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from customers.models import Customer
from omnicenter.models import ApiToken
from omnicenter.permissions import TOKEN_SCOPE_ANY
from omnicenter.services import InvalidTokenScopes, api_token_create, api_token_revoke
from tests.catalog.factories import ProductFactory
from tests.knowledge.factories import ArticleFactory

KB = "/api/v1/kb/articles/"
PRODUCTS = "/api/v1/catalog/products/"
VALIDATE = "/api/v1/catalog/validate/"
TICKETS = "/api/v1/tickets/"
CUSTOMERS = "/api/v1/customers/"
ALL_SCOPES = ["kb", "catalog", "customers", "tickets", "channels", "staff"]
# Not DRF views and not for API tokens: the api channel's inbound URL authenticates with the channel's secret.
TOKENLESS = {"api-channel-inbound"}


def bot(user, *scopes: str, read_only: bool = True) -> APIClient:
    _token, key = api_token_create(user=user, name="bot", scopes=list(scopes), read_only=read_only)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def api_v1_views():
    """(route, name, view callback) for every URL pattern under /api/v1/, walked from the root URLconf."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route, pattern.name, pattern.callback

    return [entry for entry in walk(get_resolver().url_patterns, "") if entry[0].startswith("api/v1/")]


@pytest.fixture
def catalog_and_kb(people):
    ArticleFactory(slug="reset-password", title="Reset your password", body="Open Settings and choose Forgot password.")
    ProductFactory(sku="RTR-1", name="Fibre router")


def test_every_api_v1_view_declares_a_token_scope():
    views = api_v1_views()
    assert len(views) > 20, views  # the walk really sees the router's URLs

    undeclared = []
    for route, name, callback in views:
        view_class = getattr(callback, "cls", None)
        if view_class is None:
            assert name in TOKENLESS, f"{route} is not a DRF view; tokens cannot reach it, list it in TOKENLESS"
            continue
        scope = getattr(view_class, "token_scope", None)
        allowed = set(ApiToken.Scope.values) | ({TOKEN_SCOPE_ANY} if name == "api-root" else set())
        if scope not in allowed:
            undeclared.append((route, view_class.__name__, scope))
    assert undeclared == []


def test_scope_names_cover_the_resources():
    declared = {callback.cls.token_scope for _r, _n, callback in api_v1_views() if hasattr(callback, "cls")}

    assert declared - {TOKEN_SCOPE_ANY} == set(ApiToken.Scope.values)  # no scope without an endpoint


@pytest.mark.django_db
def test_kb_bot_token_searches_articles_and_is_refused_everywhere_else(people, catalog_and_kb):
    kb_bot = bot(people.admin, "kb")

    search = kb_bot.get(KB, {"q": "password"})
    assert search.status_code == 200
    assert [hit["slug"] for hit in search.json()["results"]] == ["reset-password"]
    for url in (PRODUCTS, TICKETS, CUSTOMERS, "/api/v1/channels/", "/api/v1/users/me/"):
        response = kb_bot.get(url)
        assert response.status_code == 403, url
        assert response.json()["code"] == "token_scope", url
    assert kb_bot.post(VALIDATE, {"items": [{"sku": "RTR-1"}]}, format="json").status_code == 403


@pytest.mark.django_db
def test_catalog_bot_token_reads_and_validates_the_catalog_and_is_refused_elsewhere(people, catalog_and_kb):
    catalog_bot = bot(people.admin, "catalog")

    assert [p["sku"] for p in catalog_bot.get(PRODUCTS).json()["results"]] == ["RTR-1"]
    assert catalog_bot.post(VALIDATE, {"items": [{"sku": "RTR-1"}]}, format="json").status_code == 200
    for url in (KB, TICKETS, CUSTOMERS):
        assert catalog_bot.get(url).status_code == 403, url


@pytest.mark.django_db
def test_the_refusal_names_the_scope_and_is_translated(people):
    kb_bot = bot(people.admin, "kb", "staff")

    english = kb_bot.get(TICKETS)
    polish = kb_bot.get(TICKETS, HTTP_ACCEPT_LANGUAGE="pl")
    russian = kb_bot.get(TICKETS, HTTP_ACCEPT_LANGUAGE="ru")

    assert english.json() == {
        "detail": "This API token is not allowed to use “tickets”; its scopes are: kb, staff.",
        "code": "token_scope",
    }
    assert polish.json()["detail"] != english.json()["detail"]
    assert "tickets" in polish.json()["detail"] and "kb, staff" in polish.json()["detail"]
    assert russian.json()["detail"] not in (english.json()["detail"], polish.json()["detail"])


@pytest.mark.django_db
def test_a_scoped_token_keeps_the_users_role_and_read_only_still_cannot_write(people):
    readonly = bot(people.agent_a, "customers")
    writer = bot(people.agent_a, "customers", read_only=False)

    assert readonly.get(CUSTOMERS).status_code == 200
    assert readonly.post(CUSTOMERS, {"display_name": "New"}, format="json").status_code == 403
    assert writer.post(CUSTOMERS, {"display_name": "New"}, format="json").status_code == 201
    assert Customer.objects.filter(display_name="New").count() == 1
    assert writer.get(f"{CUSTOMERS}{people.customer.pk}/export/").status_code == 403  # an agent, not a supervisor


@pytest.mark.django_db
def test_revoked_scoped_token_is_refused(people):
    _token, key = api_token_create(user=people.agent_a, name="bot", scopes=["kb"], read_only=True)
    api_token_revoke(token=_token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert client.get(KB).status_code == 401


@pytest.mark.django_db
def test_sessions_are_not_limited_by_scopes(people):
    browser = APIClient()
    browser.force_login(people.admin)  # a real session, through SessionAuthentication

    for url in (KB, PRODUCTS, TICKETS, CUSTOMERS, "/api/v1/channels/"):
        assert browser.get(url).status_code == 200, url


@pytest.mark.django_db
def test_a_view_that_declares_no_scope_refuses_even_a_token_with_every_scope(people):
    class Undeclared(APIView):
        def get(self, request):
            return Response({"ok": True})

    _token, key = api_token_create(user=people.admin, name="full", scopes=ALL_SCOPES)
    factory = APIRequestFactory()

    refused = Undeclared.as_view()(factory.get("/x", HTTP_AUTHORIZATION=f"Token {key}"))

    assert refused.status_code == 403
    assert refused.data["code"] == "token_scope"
    assert str(refused.data["detail"]) == "This endpoint cannot be used with an API token."


@pytest.mark.django_db
def test_any_token_may_read_the_api_root_and_the_schema_which_documents_the_403(people):
    kb_bot = bot(people.agent_a, "kb")

    assert kb_bot.get("/api/v1/").status_code == 200
    response = kb_bot.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    articles = schema["paths"]["/api/v1/kb/articles/"]["get"]
    assert articles["x-token-scope"] == "kb"
    assert "“kb” scope" in articles["responses"]["403"]["description"]
    operations = [op for methods in schema["paths"].values() for op in methods.values() if isinstance(op, dict)]
    assert all(op["x-token-scope"] in ApiToken.Scope.values for op in operations)
    assert all("403" in op["responses"] for op in operations)


@pytest.mark.django_db
@pytest.mark.parametrize("scopes", [[], ["kb", "everything"], "kb", [None]])
def test_unknown_or_missing_scopes_are_refused_and_nothing_is_saved(people, scopes):
    with pytest.raises(InvalidTokenScopes) as refused:
        api_token_create(user=people.agent_a, name="bot", scopes=scopes)

    assert "kb, catalog, customers, tickets, channels, staff" in refused.value.message
    assert ApiToken.objects.count() == 0


@pytest.mark.django_db
def test_command_names_unknown_scopes_and_gives_every_scope_without_one(people):
    for args, message in (
        (("--scope", ","), "--scope needs a value"),
        (("--scope", "kb,everything"), "Unknown scope: everything"),
        (("--scope", "kb", "--all-scopes"), "not both"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("create_api_token", "agent_a", *args, stdout=StringIO(), stderr=StringIO())
    assert ApiToken.objects.count() == 0

    err = StringIO()
    call_command("create_api_token", "agent_a", "--name", "kb bot", "--read-only", "--scope", "kb",
                 stdout=StringIO(), stderr=err)
    assert ApiToken.objects.get().scopes == ["kb"]
    assert "read-only; scopes: kb" in err.getvalue()

    # DESIGN.md's `create_api_token USERNAME [--name NAME] [--read-only]` still works: every scope.
    call_command("create_api_token", "agent_a", "--name", "old style", stdout=StringIO(), stderr=StringIO())
    assert ApiToken.objects.get(name="old style").scopes == list(ApiToken.Scope.values)


@pytest.mark.django_db
def test_admin_shows_and_edits_scopes_and_refuses_unknown_ones(people, client):
    token, _key = api_token_create(user=people.agent_a, name="bot", scopes=["kb"], read_only=True)
    client.force_login(people.admin)
    url = f"/admin/omnicenter/apitoken/{token.pk}/change/"

    assert "kb" in client.get("/admin/omnicenter/apitoken/").content.decode()
    bad = client.post(url, {"name": "bot", "read_only": "on", "scopes": ["kb", "everything"]})
    assert bad.status_code == 200 and "everything" in bad.content.decode()
    token.refresh_from_db()
    assert token.scopes == ["kb"]

    good = client.post(url, {"name": "shop bot", "read_only": "on", "scopes": ["catalog", "kb"]})
    assert good.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.read_only, token.scopes, token.user) == ("shop bot", True, ["kb", "catalog"], people.agent_a)


@pytest.mark.django_db(transaction=True)
def test_migration_gives_existing_tokens_every_scope_and_is_reversible(people):
    executor = MigrationExecutor(connection)
    executor.migrate([("omnicenter", "0001_initial")])
    old_apps = executor.loader.project_state([("omnicenter", "0001_initial")]).apps
    old_apps.get_model("omnicenter", "ApiToken").objects.create(
        user_id=people.agent_a.pk, name="old", prefix="oc_old", key_hash="0" * 64, read_only=True)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert ApiToken.objects.get(name="old").scopes == ALL_SCOPES
