"""MMS and WhatsApp media, downloaded by the worker from a local stand-in for Twilio's media URLs."""

from __future__ import annotations

import base64

import pytest

from channels_inbound.twilio import messaging
from tests.channels_inbound.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, fixture
from tests.httpserver import HttpStub
from tickets.models import Attachment, TimelineEntry

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 200
MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d/Media/ME3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e"


@pytest.fixture
def cdn():
    stub = HttpStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def mms(sms_channel, twilio_post, django_capture_on_commit_callbacks):
    def receive(**changes) -> TimelineEntry:
        with django_capture_on_commit_callbacks(execute=True):
            response = twilio_post(f"/webhooks/twilio/{sms_channel.key}/message", fixture("mms_inbound", **changes))
        assert response.status_code == 200
        return TimelineEntry.objects.get(direction="in")

    return receive


def notes(entry: TimelineEntry) -> list[str]:
    return list(TimelineEntry.objects.filter(ticket=entry.ticket, kind="event", data__action="media_rejected")
                .values_list("text", flat=True))


def test_the_worker_downloads_media_with_twilio_basic_auth_into_an_attachment(twilio_api, mms):
    twilio_api.respond(status=200, body=PNG, content_type="image/png")
    entry = mms()
    [request] = twilio_api.requests
    assert request.method == "GET" and request.path == MEDIA_PATH
    assert request.header("Authorization") == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    [attachment] = Attachment.objects.filter(entry=entry)
    assert attachment.content_type == "image/png"
    assert attachment.size == len(PNG)
    entry.refresh_from_db()
    assert entry.data["media"][0]["state"] == "stored"
    assert entry.text == "Photo of the damage"


def test_the_stored_type_is_sniffed_not_taken_from_twilio(twilio_api, mms):
    twilio_api.respond(status=200, body=b"MZ\x90\x00" + b"\x00" * 300, content_type="image/jpeg")
    entry = mms()
    attachment = Attachment.objects.get(entry=entry)
    assert attachment.content_type != "image/jpeg"


def test_a_redirect_to_the_cdn_is_followed_without_credentials(twilio_api, cdn, mms, settings):
    settings.TWILIO_MEDIA_HOSTS = ["localhost"]
    cdn.respond(status=200, body=PNG, content_type="image/png")
    twilio_api.respond(status=307, body=b"", headers={"Location": f"http://localhost:{cdn.port}/media/abc"})
    entry = mms()
    assert cdn.requests[0].path == "/media/abc"
    assert cdn.requests[0].header("Authorization") == ""
    assert Attachment.objects.filter(entry=entry).count() == 1


def test_a_redirect_elsewhere_is_refused_with_a_note(twilio_api, cdn, mms, settings):
    settings.TWILIO_MEDIA_HOSTS = ["media.twiliocdn.com"]
    twilio_api.respond(status=302, body=b"", headers={"Location": f"http://localhost:{cdn.port}/steal"})
    entry = mms()
    assert cdn.requests == []
    assert not Attachment.objects.exists()
    assert "not Twilio's" in notes(entry)[0]


def test_endless_redirects_stop_after_three(twilio_api, mms, settings):
    settings.TWILIO_MEDIA_HOSTS = ["127.0.0.1"]
    twilio_api.respond(status=302, body=b"", headers={"Location": twilio_api.url("/again")})
    entry = mms()
    assert len(twilio_api.requests) == 4
    assert "redirects" in notes(entry)[0]


def test_a_media_url_off_twilios_host_is_never_fetched_with_credentials(twilio_api, cdn, mms):
    entry = mms(MediaUrl0=f"http://localhost:{cdn.port}/2010-04-01/x")
    assert cdn.requests == []
    assert "not on Twilio's API host" in notes(entry)[0]


def test_private_addresses_are_refused_outside_tests(twilio_api, mms, settings):
    settings.TWILIO_MEDIA_ALLOW_PRIVATE = False
    twilio_api.respond(status=200, body=PNG, content_type="image/png")
    entry = mms()
    assert twilio_api.requests == []
    assert notes(entry)


def test_the_address_that_actually_answered_is_checked_too_against_dns_rebinding(http_stub, settings):
    """A name may resolve to a public address for the check and to a private one when connecting:
    the peer of the open socket is what counts, before any of the body is read."""
    import requests

    from channels_inbound.twilio.client import MediaRejected, _check_peer

    http_stub.respond(status=200, body=PNG, content_type="image/png")
    settings.TWILIO_MEDIA_ALLOW_PRIVATE = False
    with requests.get(http_stub.url("/media"), stream=True, timeout=5) as response, \
            pytest.raises(MediaRejected, match="non-public address"):
        _check_peer(response)
    settings.TWILIO_MEDIA_ALLOW_PRIVATE = True
    with requests.get(http_stub.url("/media"), stream=True, timeout=5) as response:
        _check_peer(response)  # tests' loopback stand-ins are allowed


def test_an_oversized_medium_leaves_a_note_and_the_message_stays(twilio_api, mms, settings):
    settings.ATTACHMENT_MAX_BYTES = 100
    twilio_api.respond(status=200, body=PNG, content_type="image/png")
    entry = mms()
    assert not Attachment.objects.exists()
    assert "larger than 100 bytes" in notes(entry)[0]
    entry.refresh_from_db()
    assert entry.data["media"][0]["state"] == "rejected"


def test_a_second_run_does_not_download_again(twilio_api, mms):
    twilio_api.respond(status=200, body=PNG, content_type="image/png")
    entry = mms()
    assert messaging.media_download(entry_id=entry.pk) == {"stored": 0, "rejected": 0}
    assert len(twilio_api.requests) == 1
    assert Attachment.objects.count() == 1


def test_a_twilio_outage_is_retried_not_noted(twilio_api, mms):
    twilio_api.respond(status=503, body=b"")
    entry = mms()
    assert not notes(entry)
    entry.refresh_from_db()
    assert entry.data["media"][0]["state"] == "pending"
    twilio_api.respond(status=200, body=PNG, content_type="image/png")
    assert messaging.media_download(entry_id=entry.pk) == {"stored": 1, "rejected": 0}
