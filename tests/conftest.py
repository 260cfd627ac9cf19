"""Personas and shared fixtures (STYLE.md rule 17)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tests.factories import CustomerFactory, IdentityFactory, TeamFactory, UserFactory, make_channel

pytest_plugins = ["tests.httpserver", "tests.servers", "tests.smtpserver"]


@dataclass
class People:
    team_a: object
    team_b: object
    agent_a: object
    agent_b: object
    supervisor: object
    admin: object
    customer: object
    other_customer: object


@pytest.fixture
def people(db) -> People:
    team_a = TeamFactory(name="Support A")
    team_b = TeamFactory(name="Support B")
    customer = CustomerFactory(display_name="Anna Kowalska")
    IdentityFactory(customer=customer, kind="email", value="anna@example.pl")
    other = CustomerFactory(display_name="Борис Иванов")
    IdentityFactory(customer=other, kind="email", value="boris@example.ru")
    return People(
        team_a=team_a,
        team_b=team_b,
        agent_a=UserFactory(username="agent_a", role="agent", teams=[team_a]),
        agent_b=UserFactory(username="agent_b", role="agent", teams=[team_b]),
        supervisor=UserFactory(username="supervisor", role="supervisor", teams=[team_a, team_b]),
        admin=UserFactory(username="admin", role="admin"),
        customer=customer,
        other_customer=other,
    )


@dataclass
class ApiChannel:
    channel: object
    secret: str

    @property
    def url(self) -> str:
        return f"/api/v1/channels/{self.channel.key}/inbound"


@pytest.fixture
def api_channel(people) -> ApiChannel:
    channel, generated = make_channel(name="Shop API", default_team=people.team_a)
    return ApiChannel(channel=channel, secret=generated["secret"])


@pytest.fixture
def post_inbound(client):
    """POST a payload to an api channel the way an integrator does."""

    def post(api: ApiChannel, payload: dict, *, secret: str | None = None, url: str | None = None):
        headers = {} if secret == "" else {"HTTP_AUTHORIZATION": f"Bearer {secret or api.secret}"}
        return client.post(url or api.url, data=json.dumps(payload), content_type="application/json", **headers)

    return post


@pytest.fixture
def api_as():
    """An API client authenticated (session) as one persona."""

    def make(user) -> APIClient:
        api = APIClient()
        api.force_authenticate(user)
        return api

    return make


def message(msg_id: str = "m-1", text: str = "Where is my order?", **sender) -> dict:
    return {"id": msg_id, "from": sender or {"email": "anna@example.pl", "name": "Anna Kowalska"}, "text": text}


@pytest.fixture
def own_channel_layer():
    """A channel layer of this test's own for in-process (communicator) consumers.

    The test ASGI server runs in a thread of this process and shares the layer object; a consumer
    it still has waiting holds the layer's receive lock on uvicorn's loop, and an in-process
    consumer on another loop then failed with "Lock ... is bound to a different event loop". Both
    layers talk to the same Redis, so group messages reach consumers on either."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    shared = channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    if shared is not None:
        channel_layers.backends[DEFAULT_CHANNEL_LAYER] = shared
