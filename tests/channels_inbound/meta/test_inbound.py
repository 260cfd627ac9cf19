"""What a Meta message becomes: text, media the worker downloads, postbacks, names, edits,
deletions, and read/delivery reports applied to our outbound messages."""

from __future__ import annotations

import base64
import time

import pytest

from channels_inbound.delivery import message_status_apply
from customers.models import Customer, Identity
from tests.channels_inbound.meta.conftest import IGSID, PSID, load
from tickets.models import Attachment, TimelineEntry
from tickets.services import ticket_reply

pytestmark = pytest.mark.django_db

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _with_cdn(payload: dict, url: str) -> dict:
    payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"] = url
    return payload


def test_an_image_is_downloaded_by_the_worker_and_its_type_sniffed(post_meta, messenger, graph):
    # The CDN claims a generic type; the stored type comes from the bytes.
    graph.route("/cdn/", body=PNG, content_type="application/octet-stream")
    post_meta(messenger, _with_cdn(load("messenger_attachments.json"), graph.url("/cdn/photo.png?oh=1")))

    entry = TimelineEntry.objects.get(direction="in")
    attachment = Attachment.objects.get(entry=entry)
    assert attachment.content_type == "image/png"
    assert attachment.file.read() == PNG
    assert "pending_media" not in entry.data and entry.data.get("media_failed") is None
    # The location became text.
    assert "52.2297, 21.0122" in entry.text
    assert len(graph.calls("/cdn/")) == 1


def test_a_file_above_the_limit_is_refused_without_storing_it(post_meta, messenger, graph, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    graph.route("/cdn/", body=PNG, content_type="image/png")
    post_meta(messenger, _with_cdn(load("messenger_attachments.json"), graph.url("/cdn/big.png")))

    entry = TimelineEntry.objects.get(direction="in")
    assert not Attachment.objects.exists()
    assert entry.data["media_failed"][0]["error"].endswith("above the limit of 10")
    assert "pending_media" not in entry.data


def test_an_expired_media_url_is_recorded_not_retried(post_meta, messenger, graph):
    graph.route("/cdn/", status=404, body="gone")
    post_meta(messenger, _with_cdn(load("messenger_attachments.json"), graph.url("/cdn/old.png")))

    entry = TimelineEntry.objects.get(direction="in")
    assert "HTTP 404" in entry.data["media_failed"][0]["error"]
    assert len(graph.calls("/cdn/")) == 1


def test_a_cdn_outage_leaves_the_file_pending_for_a_retry(post_meta, messenger, graph, settings):
    graph.route("/cdn/", status=503, body="busy")
    post_meta(messenger, _with_cdn(load("messenger_attachments.json"), graph.url("/cdn/photo.png")))

    entry = TimelineEntry.objects.get(direction="in")
    # Eager Celery retried up to max_retries; the file is still announced, nothing lost.
    assert len(entry.data["pending_media"]) == 1
    assert len(graph.calls("/cdn/")) > 1


def test_the_sender_name_is_fetched_once_from_the_profile_api(post_meta, messenger, graph):
    post_meta(messenger, load("messenger_text.json"))
    payload = load("messenger_quick_reply.json")
    post_meta(messenger, payload)

    identity = Identity.objects.get(kind="messenger")
    assert identity.display_name == "Anna Nowak"
    assert identity.customer.display_name == "Anna Nowak"
    profile_calls = graph.calls(f"/v21.0/{PSID}?")
    assert len(profile_calls) == 1
    assert "fields=first_name%2Clast_name" in profile_calls[0].path
    assert "access_token=EAAGm0PX4ZCpsBAPageTokenForTests" in profile_calls[0].path


def test_instagram_names_come_from_name_and_username(post_meta, instagram, graph):
    post_meta(instagram, load("instagram_text.json"))
    assert Identity.objects.get(kind="instagram").display_name == "Ola Wiśniewska"
    assert "fields=name%2Cusername" in graph.calls(f"/v21.0/{IGSID}?")[0].path


def test_a_refused_profile_leaves_the_name_empty_and_is_not_asked_again(post_meta, messenger, graph):
    graph.route(f"/v21.0/{PSID}", status=400, json={"error": {"message": "No permission", "code": 200}})
    post_meta(messenger, load("messenger_text.json"))
    post_meta(messenger, load("messenger_quick_reply.json"))

    assert Identity.objects.get(kind="messenger").display_name == ""
    assert len(graph.calls(f"/v21.0/{PSID}?")) == 1


def test_quick_replies_and_postbacks_keep_their_payloads(post_meta, messenger):
    post_meta(messenger, load("messenger_quick_reply.json"))
    post_meta(messenger, load("messenger_postback.json"))

    quick, postback = TimelineEntry.objects.filter(direction="in").order_by("pk")
    assert (quick.text, quick.data["quick_reply_payload"]) == ("Track my order", "TRACK_ORDER")
    assert (postback.text, postback.data["postback_payload"]) == ("Talk to a person", "HUMAN_HANDOVER")
    assert quick.ticket_id == postback.ticket_id


def test_an_edit_shows_the_new_text_and_keeps_the_old(post_meta, messenger):
    post_meta(messenger, load("messenger_text.json"))
    post_meta(messenger, load("messenger_edit.json"))
    post_meta(messenger, load("messenger_edit.json"))  # a repeated report changes nothing

    entry = TimelineEntry.objects.get(direction="in")
    assert entry.text == "Hi! Is the blue jacket back in stock in size M?"
    assert [e["text"] for e in entry.data["edits"]] == ["Hi! Is the blue jacket back in stock?"]


def test_an_unsent_instagram_message_is_marked_withdrawn(post_meta, instagram):
    post_meta(instagram, load("instagram_text.json"))
    post_meta(instagram, load("instagram_deleted.json"))

    entry = TimelineEntry.objects.get(direction="in")
    assert entry.text == "Do you ship to Poland?"
    assert entry.data["deleted_by_sender_at"]


def _reply(people, text="We have it in M and L."):
    entry = TimelineEntry.objects.filter(direction="in").latest("pk")
    return ticket_reply(ticket=entry.ticket, by=people.agent_a, text=text)


def test_delivery_and_read_reports_move_our_messages_forward_never_back(post_meta, messenger, people, graph,
                                                                      django_capture_on_commit_callbacks):
    post_meta(messenger, load("messenger_text.json"))
    with django_capture_on_commit_callbacks(execute=True):
        reply = _reply(people)
    reply.refresh_from_db()
    assert (reply.delivery_status, reply.provider_message_id) == ("sent", "m_out_1")

    post_meta(messenger, load("messenger_delivery.json"))
    reply.refresh_from_db()
    assert reply.delivery_status == "delivered"

    read = load("messenger_read.json")
    read["entry"][0]["messaging"][0]["read"]["watermark"] = int(time.time() * 1000) + 1000
    post_meta(messenger, read)
    reply.refresh_from_db()
    assert reply.delivery_status == "read"

    # A late delivery report does not move it back.
    late = load("messenger_delivery.json")
    late["entry"][0]["messaging"][0]["delivery"]["watermark"] += 1
    post_meta(messenger, late)
    reply.refresh_from_db()
    assert reply.delivery_status == "read"
    assert not message_status_apply(entry_id=reply.pk, status="delivered")


def test_a_read_watermark_before_a_message_leaves_it_unread(post_meta, messenger, people,
                                                          django_capture_on_commit_callbacks):
    post_meta(messenger, load("messenger_text.json"))
    with django_capture_on_commit_callbacks(execute=True):
        reply = _reply(people)
    read = load("messenger_read.json")
    read["entry"][0]["messaging"][0]["read"]["watermark"] = int(time.time() * 1000) - 60_000
    post_meta(messenger, read)
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"


def test_a_message_from_a_new_sender_creates_one_customer(post_meta, messenger):
    before = Customer.objects.count()
    post_meta(messenger, load("messenger_text.json"))
    post_meta(messenger, load("messenger_quick_reply.json"))
    assert Customer.objects.count() == before + 1
