"""Two whole calls driven by signed webhooks, in the order Twilio sends them, asserted step by step
against the TwiML and the timeline.

1. Menu, digit 1 (team A), team A's agents ring, nobody answers, voicemail, recording and
   transcription callbacks, final status.
2. Menu, digit 2 (team B), nobody ready: queue with announcements, the caller presses a key to
   leave, asks for a callback; the callback request is on the ticket and in "Callbacks due".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.core.cache import cache
from django.test import Client

from channels_inbound.models import InboundEvent
from channels_inbound.services import channel_update
from channels_inbound.twilio.selectors import callbacks_due
from tests.channels_inbound.twilio.conftest import ACCOUNT_SID, CUSTOMER_PHONE, fixture
from tickets.models import Attachment, TimelineEntry
from tickets.selectors import tickets_visible_to

MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 100


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def menu_channel(voice_channel, people):
    channel_update(channel=voice_channel, settings_data={**voice_channel.settings, "menu": [
        {"digit": "1", "team": people.team_a.pk, "label": "orders"},
        {"digit": "2", "team": people.team_b.pk, "label": "billing"},
    ]})
    return voice_channel


def twiml(response) -> list[ET.Element]:
    assert response.status_code == 200, response.content
    return list(ET.fromstring(response.content))  # noqa: S314 (our own TwiML)


def test_menu_ring_no_answer_voicemail_transcription(menu_channel, people, twilio_post, twilio_api,
                                                     django_capture_on_commit_callbacks):
    sid = "CAflow1"
    base = f"/webhooks/twilio/{menu_channel.key}/voice"

    def post(hook: str = "", query: str = "", **params):
        with django_capture_on_commit_callbacks(execute=True):
            return twilio_post(base + (f"/{hook}" if hook else "") + query, fixture("voice_incoming", CallSid=sid, **params))

    browser = Client()
    browser.force_login(people.agent_a)
    assert browser.get("/app/voice/token/").status_code == 200

    # The call comes in: greeting, then the menu.
    say, gather, redirect = twiml(post())
    assert say.text == "Welcome to Omnicenter."
    assert gather.tag == "Gather" and "For orders, press 1" in gather[0].text
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.data["call"]["status"] == "ringing" and entry.identity.value == CUSTOMER_PHONE

    # Digit 1: team A's ready agent rings.
    [dial] = twiml(post("menu", "?lang=en", Digits="1"))
    assert [c.find("Identity").text for c in dial] == [f"agent-{people.agent_a.pk}"]
    entry.refresh_from_db()
    assert entry.ticket.team == people.team_a

    # Nobody answers: the caller is offered a callback or voicemail, and stays on the line.
    say, gather, redirect = twiml(post("dial", f"?lang=en&team={people.team_a.pk}", DialCallStatus="no-answer"))
    assert say.text == "Nobody could take your call."
    assert redirect.text.split("?")[0].endswith("/voice/voicemail")
    _say, record = twiml(post("voicemail", "?lang=en"))
    assert record.tag == "Record" and record.get("transcribe") == "true"

    # Twilio reports the recording (downloaded by the worker) and then the transcription.
    twilio_api.respond(status=200, body=MP3, content_type="audio/mpeg")
    assert twiml(post("recorded", "?lang=en", RecordingUrl="x"))[-1].tag == "Hangup"
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/REflow1"
    post("recording", RecordingSid="REflow1", RecordingStatus="completed", RecordingUrl=url, RecordingDuration="12")
    post("recording", RecordingSid="REflow1", RecordingStatus="completed", RecordingUrl=url, RecordingDuration="12")
    entry.refresh_from_db()
    assert entry.data["call"]["transcription_state"] == "pending"
    post("transcription", RecordingSid="REflow1", TranscriptionStatus="completed",
         TranscriptionText="My parcel never arrived, please call me.")
    post("status", CallStatus="completed", CallDuration="48", SequenceNumber="4")

    entry.refresh_from_db()
    call = entry.data["call"]
    assert call["outcome"] == "voicemail" and call["duration"] == 48 and call["menu_digit"] == "1"
    assert call["transcription"] == "My parcel never arrived, please call me."
    assert "My parcel never arrived" in entry.text
    assert Attachment.objects.filter(entry=entry).count() == 1
    assert len(twilio_api.requests) == 1  # the recording, once
    assert TimelineEntry.objects.filter(kind="call").count() == 1
    assert InboundEvent.objects.filter(external_id__startswith="rec:").count() == 1


def test_menu_queue_leave_and_callback(menu_channel, people, twilio_post, django_capture_on_commit_callbacks):
    sid = "CAflow2"
    base = f"/webhooks/twilio/{menu_channel.key}/voice"

    def post(hook: str = "", query: str = "", **params):
        with django_capture_on_commit_callbacks(execute=True):
            return twilio_post(base + (f"/{hook}" if hook else "") + query, fixture("voice_incoming", CallSid=sid, **params))

    twiml(post())
    # Digit 2: nobody of team B is ready, so the caller waits in team B's queue.
    [enqueue] = twiml(post("menu", "?lang=en", Digits="2"))
    assert enqueue.tag == "Enqueue" and enqueue.text == f"{menu_channel.key}-team-{people.team_b.pk}"
    wait = f"?lang=en&team={people.team_b.pk}"
    gather, pause = twiml(post("wait", wait, QueuePosition="2", QueueTime="5"))
    assert "number 2 in line" in gather[0].text and pause.tag == "Pause"
    gather, _pause = twiml(post("wait", wait, QueuePosition="1", QueueTime="35"))
    assert "number 1 in line" in gather[0].text
    # The caller presses a key: out of the queue, on to the choice.
    assert [e.tag for e in twiml(post("leave", "?lang=en", Digits="0"))] == ["Leave"]
    say, gather, _redirect = twiml(post("dial", wait, QueueResult="leave"))
    assert gather.get("action").split("?")[0].endswith("/voice/options")
    say, hangup = twiml(post("options", "?lang=en", Digits="1"))
    assert "call you back" in say.text and hangup.tag == "Hangup"
    post("status", CallStatus="completed", CallDuration="70", SequenceNumber="2")

    call_entry = TimelineEntry.objects.get(kind="call")
    assert call_entry.data["call"]["outcome"] == "callback"
    assert call_entry.ticket.team == people.team_b
    [request] = callbacks_due(tickets_visible_to(people.agent_b))
    assert request.ticket_id == call_entry.ticket_id and request.phone == CUSTOMER_PHONE
    assert "callback" in call_entry.ticket.tags.values_list("name", flat=True)
    assert list(callbacks_due(tickets_visible_to(people.agent_a))) == []  # team A cannot see team B's ticket
