"""`/webhooks/meta/<key>`: handshake, signatures, routing of several pages, idempotency."""

from __future__ import annotations

import json

import pytest

from channels_inbound.models import Channel, InboundEvent
from customers.models import Identity
from tests.channels_inbound.meta.conftest import APP_SECRET, PAGE_ID, PSID, load, messenger_settings, sign
from tests.factories import make_channel
from tickets.models import Ticket, TimelineEntry

pytestmark = pytest.mark.django_db


def test_handshake_answers_the_challenge_with_the_right_verify_token(client, messenger):
    response = client.get(messenger.url, {"hub.mode": "subscribe", "hub.verify_token": "my-verify-token",
                                          "hub.challenge": "1158201444"})
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


def test_handshake_with_a_wrong_verify_token_is_403_and_counted(client, messenger):
    response = client.get(messenger.url, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert response.status_code == 403
    assert b"1" not in response.content.replace(b"403", b"")
    messenger.channel.refresh_from_db()
    assert messenger.channel.rejected_requests == 1


def test_a_signed_message_lands_on_a_ticket_of_a_page_scoped_customer(post_meta, messenger):
    response = post_meta(messenger, load("messenger_text.json"))

    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0}
    entry = TimelineEntry.objects.get(direction="in")
    assert entry.text == "Hi! Is the blue jacket back in stock?"
    assert entry.channel == messenger.channel
    assert entry.ticket.team.name == "Support A"
    assert (entry.identity.kind, entry.identity.namespace, entry.identity.value) == ("messenger", PAGE_ID, PSID)
    assert InboundEvent.objects.get().status == "processed"


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc"])
def test_a_missing_or_wrong_signature_is_403_stores_nothing_and_is_counted(post_meta, messenger, signature):
    response = post_meta(messenger, load("messenger_text.json"), signature=signature)

    assert response.status_code == 403
    assert not InboundEvent.objects.exists()
    assert not TimelineEntry.objects.exists()
    messenger.channel.refresh_from_db()
    assert messenger.channel.rejected_requests == 1


def test_a_body_signed_with_another_secret_is_refused(post_meta, messenger):
    response = post_meta(messenger, load("messenger_text.json"), secret="not-the-app-secret")
    assert response.status_code == 403
    assert not InboundEvent.objects.exists()


def test_the_signature_covers_the_raw_body_byte_for_byte(post_meta, messenger):
    # Meta signs the bytes it sends (escaped unicode, its own spacing); re-serializing would break it.
    raw = json.dumps(load("messenger_text.json"), ensure_ascii=True, separators=(",", ":")).encode()
    tampered = raw.replace(b"blue", b"pink")
    assert post_meta(messenger, tampered, signature=sign(raw)).status_code == 403
    assert post_meta(messenger, raw, signature=sign(raw)).status_code == 200


def test_unknown_key_is_404_and_trailing_slash_works(post_meta, messenger):
    assert post_meta(messenger, load("messenger_text.json"), url="/webhooks/meta/nope").status_code == 404
    assert post_meta(messenger, load("messenger_text.json"), url=messenger.url + "/").status_code == 200
    assert post_meta(messenger, load("messenger_text.json"), url=messenger.url + "//").status_code == 404


def test_a_repeated_delivery_is_200_and_changes_nothing(post_meta, messenger):
    payload = load("messenger_text.json")
    post_meta(messenger, payload)
    second = post_meta(messenger, payload)

    assert second.status_code == 200
    assert second.json() == {"stored": 0, "duplicates": 1}
    assert InboundEvent.objects.count() == 1
    assert TimelineEntry.objects.filter(direction="in").count() == 1


def test_one_app_serves_several_pages_each_entry_routed_to_its_channel(post_meta, messenger, people):
    second, _ = make_channel(kind="messenger", name="Outlet page", default_team=people.team_b,
                             settings_data=messenger_settings(page_id="200300400500600"))
    payload = load("messenger_text.json")
    other = json.loads(json.dumps(payload["entry"][0]).replace(PAGE_ID, "200300400500600").replace("m_AW", "m_OT"))
    payload["entry"].append(other)

    # Posted to the first page's URL: the key selects the app, the entry ids select the pages.
    response = post_meta(messenger, payload)

    assert response.json() == {"stored": 2, "duplicates": 0}
    by_channel = {e.channel.name: e for e in TimelineEntry.objects.filter(direction="in").select_related("channel", "identity")}
    assert set(by_channel) == {"Shop page", "Outlet page"}
    # The same person has one PSID per page: two identities, kept apart by namespace.
    assert by_channel["Outlet page"].identity.namespace == "200300400500600"
    assert by_channel["Outlet page"].ticket.team == people.team_b
    assert Identity.objects.filter(kind="messenger").count() == 2
    assert second.inbound_events.count() == 1


def test_a_page_of_another_app_is_not_reached_through_this_apps_signature(post_meta, messenger, people):
    make_channel(kind="messenger", name="Someone else's page",
                 settings_data=messenger_settings(page_id="999000999000", app_secret="another-apps-secret"))
    payload = load("messenger_text.json")
    payload["entry"][0]["id"] = "999000999000"

    response = post_meta(messenger, payload)

    assert response.status_code == 200
    assert response.json() == {"stored": 0, "duplicates": 0}
    assert not InboundEvent.objects.exists()


def test_echoes_of_our_own_messages_are_ignored(post_meta, messenger):
    response = post_meta(messenger, load("messenger_echo.json"))
    assert response.json() == {"stored": 0, "duplicates": 0}
    assert not TimelineEntry.objects.exists()


def test_instagram_changes_and_messaging_shapes_both_land(post_meta, instagram):
    post_meta(instagram, load("instagram_text.json"))
    post_meta(instagram, load("instagram_changes.json"))

    texts = list(TimelineEntry.objects.filter(direction="in").values_list("text", flat=True))
    assert texts == ["Do you ship to Poland?", "And to Germany?"]
    assert Ticket.objects.count() == 1
    assert set(Identity.objects.filter(kind="instagram").values_list("namespace", flat=True)) == {"17841405822304914"}


def test_an_inactive_channel_is_404(post_meta, messenger):
    Channel.objects.filter(pk=messenger.channel.pk).update(is_active=False)
    assert post_meta(messenger, load("messenger_text.json")).status_code == 404


def test_the_webhook_costs_a_constant_number_of_queries(client, messenger, django_assert_num_queries):
    payload = load("messenger_text.json")
    for n in range(5):
        item = json.loads(json.dumps(payload["entry"][0]["messaging"][0]))
        item["message"]["mid"] = f"m_extra_{n}"
        payload["entry"][0]["messaging"].append(item)
    body = json.dumps(payload).encode()
    # key channel, routing, then one INSERT per event (no processing here: nothing commits)
    with django_assert_num_queries(2 + 6):
        response = client.post(messenger.url, data=body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE_256=sign(body, APP_SECRET))
    assert response.json()["stored"] == 6


def test_the_apps_url_also_routes_its_instagram_account(post_meta, messenger, instagram):
    # Registered once in the app: the Messenger channel's URL receives the Instagram object too.
    response = post_meta(messenger, load("instagram_text.json"))

    assert response.json() == {"stored": 1, "duplicates": 0}
    entry = TimelineEntry.objects.get(direction="in")
    assert entry.channel == instagram.channel
    assert entry.identity.kind == "instagram"


def test_a_body_above_the_limit_is_413_and_stores_nothing(post_meta, messenger, settings):
    settings.INBOUND_MAX_BYTES = 100
    assert post_meta(messenger, load("messenger_text.json")).status_code == 413
    assert not InboundEvent.objects.exists()


def test_a_signed_body_that_is_not_a_meta_payload_is_400(post_meta, messenger):
    assert post_meta(messenger, b"[1, 2]").status_code == 400
    assert post_meta(messenger, b"not json").status_code == 400
    assert not InboundEvent.objects.exists()
