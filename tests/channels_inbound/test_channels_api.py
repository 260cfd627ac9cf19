"""`/api/v1/channels/`: admins create and configure channels; a generated secret is shown once."""

from __future__ import annotations

import json

import pytest

from channels_inbound.models import Channel
from tests.factories import make_channel

CHANNELS = "/api/v1/channels/"


def create(api, **body):
    return api.post(CHANNELS, {"kind": "api", "name": "Shop", **body}, format="json")


@pytest.mark.parametrize("user", ["agent_a", "supervisor"])
def test_only_admins_may_use_channels(people, api_channel, api_as, user):
    api = api_as(getattr(people, user))

    assert api.get(CHANNELS).status_code == 403
    assert api.get(f"{CHANNELS}{api_channel.channel.key}/").status_code == 403
    assert create(api).status_code == 403
    assert api.patch(f"{CHANNELS}{api_channel.channel.key}/", {"name": "Mine"}, format="json").status_code == 403
    assert Channel.objects.count() == 1


def test_anonymous_visitors_get_no_channels(people, api_channel, client):
    response = client.get(CHANNELS)

    assert response.status_code == 401
    assert api_channel.secret not in response.content.decode()


def test_creating_an_api_channel_returns_its_key_urls_and_secret_once(people, api_as):
    response = create(api_as(people.admin), name="Shop", default_team=people.team_a.pk)

    assert response.status_code == 201, response.content
    body = response.json()
    channel = Channel.objects.get()
    assert (body["key"], body["kind"], body["name"], body["default_team"]) == (channel.key, "api", "Shop", people.team_a.pk)
    assert body["webhook_urls"] == {"inbound": f"http://127.0.0.1:8000/api/v1/channels/{channel.key}/inbound"}
    assert set(body["secrets"]) == {"secret"}
    assert len(body["secrets"]["secret"]) >= 32
    assert channel.secret("secret") == body["secrets"]["secret"]
    assert body["secrets"]["secret"] not in channel.secrets_encrypted


def test_the_generated_secret_authenticates_inbound_messages(people, api_as, client, django_capture_on_commit_callbacks):
    body = create(api_as(people.admin), default_team=people.team_a.pk).json()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            body["webhook_urls"]["inbound"].removeprefix("http://127.0.0.1:8000"),
            data=json.dumps({"id": "1", "from": {"email": "anna@example.pl"}, "text": "hi"}),
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {body['secrets']['secret']}",
        )

    assert response.status_code == 202


def test_reading_a_channel_never_returns_the_secret(people, api_as):
    api = api_as(people.admin)
    created = create(api).json()
    secret = created["secrets"]["secret"]

    detail = api.get(f"{CHANNELS}{created['key']}/")
    listing = api.get(CHANNELS)
    patched = api.patch(f"{CHANNELS}{created['key']}/", {"name": "Shop 2"}, format="json")

    for response in (detail, listing, patched):
        assert response.status_code == 200
        assert secret not in response.content.decode()
    assert "secrets" not in detail.json()
    assert listing.json()["count"] == 1
    assert listing.json()["results"][0]["key"] == created["key"]


def test_a_kind_that_is_not_available_yet_is_400_with_a_readable_message(people, api_as, monkeypatch):
    # Every kind DESIGN.md lists has an adapter now; a deployment may still lack one (a provider
    # package left out), which is what removing it from the registry stands for.
    from channels_inbound import registry

    monkeypatch.delitem(registry._adapters, "telegram")
    response = create(api_as(people.admin), kind="telegram")

    assert response.status_code == 400
    [message] = response.json()["kind"]
    assert "not available yet" in message
    assert "api" in message
    assert not Channel.objects.exists()


def test_an_unknown_kind_is_400(people, api_as):
    response = create(api_as(people.admin), kind="carrier-pigeon")

    assert response.status_code == 400
    assert "carrier-pigeon" in response.json()["kind"][0]
    assert not Channel.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"settings": {"outbound_url": "https://crm.example.com/hook", "colour": "red"}}, "settings"),
    ({"settings": {"outbound_url": "not a url"}}, "settings"),
    ({"settings": "nope"}, "settings"),
    ({"name": ""}, "name"),
    ({"default_team": 999999}, "default_team"),
])
def test_invalid_channel_fields_are_400(people, api_as, body, field):
    response = create(api_as(people.admin), **body)

    assert response.status_code == 400
    assert field in response.json()
    assert not Channel.objects.exists()


def test_an_unknown_setting_is_named_in_the_error(people, api_as):
    response = create(api_as(people.admin), settings={"colour": "red"})

    assert response.json()["settings"] == {"colour": ["Unknown setting."]}


def test_an_admin_renames_disables_and_points_a_channel_elsewhere(people, api_channel, api_as):
    api = api_as(people.admin)
    url = f"{CHANNELS}{api_channel.channel.key}/"

    response = api.patch(url, {"name": "Shop v2", "is_active": False,
                               "settings": {"outbound_url": "https://crm.example.com/replies"}}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["is_active"]) == ("Shop v2", False)
    assert response.json()["settings"] == {"outbound_url": "https://crm.example.com/replies"}
    channel = Channel.objects.get()
    assert (channel.name, channel.is_active, channel.settings) == ("Shop v2", False, {"outbound_url": "https://crm.example.com/replies"})
    assert channel.secret("secret") == api_channel.secret


def test_patching_only_the_name_keeps_the_settings(people, api_channel, api_as):
    channel = api_channel.channel
    channel.settings = {"outbound_url": "https://crm.example.com/replies"}
    channel.save(update_fields=["settings"])

    api_as(people.admin).patch(f"{CHANNELS}{channel.key}/", {"name": "Renamed"}, format="json")

    channel.refresh_from_db()
    assert (channel.name, channel.settings) == ("Renamed", {"outbound_url": "https://crm.example.com/replies"})


def test_a_disabled_channel_refuses_inbound_messages(people, api_channel, api_as, post_inbound):
    api_as(people.admin).patch(f"{CHANNELS}{api_channel.channel.key}/", {"is_active": False}, format="json")

    response = post_inbound(api_channel, {"id": "1", "from": {"email": "anna@example.pl"}, "text": "hi"})

    assert response.status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"settings": {"outbound_url": "ftp:/broken"}}, "settings"),
    ({"settings": {"webhook_secret": "x"}}, "settings"),
    ({"kind": "email"}, "kind"),
    ({"default_team": 999999}, "default_team"),
])
def test_an_invalid_patch_is_400_and_changes_nothing(people, api_channel, api_as, body, field):
    response = api_as(people.admin).patch(f"{CHANNELS}{api_channel.channel.key}/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    channel = Channel.objects.get()
    assert (channel.kind, channel.settings, channel.default_team) == ("api", {}, people.team_a)


def test_a_channel_cannot_be_deleted_through_the_api(people, api_channel, api_as):
    response = api_as(people.admin).delete(f"{CHANNELS}{api_channel.channel.key}/")

    assert response.status_code == 405
    assert Channel.objects.count() == 1


def test_an_unknown_channel_key_is_404(people, api_as):
    assert api_as(people.admin).get(f"{CHANNELS}no-such-key/").status_code == 404


def test_the_channel_list_is_sorted_by_name(people, api_as):
    for name in ("Zeta", "Alpha", "Mid"):
        make_channel(name=name)

    names = [c["name"] for c in api_as(people.admin).get(CHANNELS).json()["results"]]

    assert names == ["Alpha", "Mid", "Zeta"]


def test_acknowledgement_texts_are_refused_for_unknown_languages_or_too_long_and_nothing_changes(people, api_as, client):
    from channels_inbound.services import channel_create

    channel, _ = channel_create(kind="email", name="Mail", settings_data={
        "address": "support@example.test", "auto_acknowledge": True, "acknowledgement_templates": {"pl": "Nr {number}"}})
    before = dict(channel.settings)
    api = api_as(people.admin)
    url = f"{CHANNELS}{channel.key}/"

    unknown = api.patch(url, {"settings": {**before, "acknowledgement_templates": {"pl": "Ok", "de": "Danke"}}},
                        format="json", HTTP_ACCEPT_LANGUAGE="pl")
    too_long = api.patch(url, {"settings": {**before, "acknowledgement_templates": {"ru": "я" * 5001}}}, format="json")
    accepted = api.patch(url, {"settings": {**before, "acknowledgement_templates": {"ru": "№ {number}"}}}, format="json")

    assert unknown.status_code == too_long.status_code == 400
    assert unknown.json()["settings"]["acknowledgement_templates"] == ["Nie ma takiego języka: de. Użyj jednego z: en, ru, pl."]
    assert "5000" in str(too_long.json()["settings"]["acknowledgement_templates"])
    assert accepted.status_code == 200
    channel.refresh_from_db()
    assert channel.settings["acknowledgement_templates"] == {"ru": "№ {number}"}

    client.force_login(people.admin)
    page = f"/admin/channels_inbound/channel/{channel.pk}/change/"
    assert "acknowledgement_templates" in client.get(page).text  # listed with its help among the available settings
    refused = client.post(page, {"name": "Mail", "kind": "email", "is_active": "on", "settings": json.dumps(
        {**channel.settings, "acknowledgement_templates": {"xx": "?"}})})
    assert refused.status_code == 200 and "No such language: xx" in refused.text
    channel.refresh_from_db()
    assert channel.settings["acknowledgement_templates"] == {"ru": "№ {number}"}
