"""The OpenAPI schema at /api/schema/ and the offline docs at /api/docs/."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

RESOURCES = ["/api/v1/tickets/", "/api/v1/customers/", "/api/v1/channels/"]


@pytest.mark.django_db
def test_schema_is_served_as_openapi_yaml_with_the_resources_and_token_auth(client, people):
    client.force_login(people.agent_a)
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Omnicenter API"
    for path in RESOURCES:
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Token <key>`; create keys with `manage.py create_api_token`.",
    }


@pytest.mark.django_db
def test_schema_is_also_served_as_json(client, people):
    client.force_login(people.agent_a)
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert set(RESOURCES) <= set(schema["paths"])
    ticket_list = schema["paths"]["/api/v1/tickets/"]["get"]
    assert {"tokenAuth": []} in ticket_list["security"]


@pytest.mark.django_db
def test_docs_page_loads_every_asset_from_this_server(client, people):
    client.force_login(people.agent_a)
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '"/api/schema/"' in html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets, "the page references its Swagger UI assets"
    assert all(url.startswith("/static/drf_spectacular_sidecar/") for url in assets), assets
    assert not re.search(r"https?://|//cdn|jsdelivr|unpkg", html)
    for url in assets:
        assert client.get(url).status_code == 200, url  # served locally (whitenoise)


@pytest.mark.django_db
def test_schema_generation_has_no_warnings_and_validates(tmp_path):
    GENERATOR_STATS.reset()  # count only this generation's warnings, not earlier requests'
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert set(RESOURCES) <= set(yaml.safe_load(target.read_text())["paths"])


def test_schema_and_docs_are_not_public(client, people):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
