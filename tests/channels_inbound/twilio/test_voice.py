"""Voice: TwiML from the channel's settings and the database, parsed and asserted element by
element, and a whole call driven by signed webhooks against the timeline."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import jwt
import pytest
from django.core.cache import cache
from django.utils import timezone

from channels_inbound.models import Channel, InboundEvent
from channels_inbound.services import channel_update
from channels_inbound.twilio import selectors as twilio_selectors
from channels_inbound.twilio import twiml
from tests.channels_inbound.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER_PHONE, fixture
from tests.factories import CustomerFactory, IdentityFactory, UserFactory
from tickets.models import Attachment, Ticket, TimelineEntry
from tickets.selectors import tickets_visible_to

CALL = "CA6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 100


@pytest.fixture(autouse=True)
def _no_ready_agents():
    cache.clear()  # device registrations live in this run's own Redis database
    yield
    cache.clear()


def tree(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)  # noqa: S314 (our own TwiML)
    assert root.tag == "Response"
    return root


def tags(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


@pytest.fixture
def call(voice_channel, twilio_post, django_capture_on_commit_callbacks):
    """POST one voice webhook of the call as Twilio does; hook '' is the incoming call."""

    def post(hook: str = "", query: str = "", **params):
        path = f"/webhooks/twilio/{voice_channel.key}/voice" + (f"/{hook}" if hook else "") + query
        with django_capture_on_commit_callbacks(execute=True):
            return twilio_post(path, fixture("voice_incoming", **params))

    return post


def ready(*users, client=None):
    """Agents open the workspace: their browser mints a token and registers the device."""
    from django.test import Client

    for user in users:
        browser = Client()
        browser.force_login(user)
        assert browser.get("/app/voice/token/").status_code == 200


def set_settings(channel: Channel, **changes) -> None:
    channel_update(channel=channel, settings_data={**channel.settings, **changes})


def test_greeting_in_the_default_language_then_the_team_queue_when_nobody_is_ready(voice_channel, call):
    root = tree(call())
    assert tags(root) == ["Say", "Enqueue"]
    assert root[0].text == "Welcome to Omnicenter." and root[0].get("language") == "en-US"
    enqueue = root[1]
    assert enqueue.text == f"{voice_channel.key}-team-{voice_channel.default_team_id}"
    assert enqueue.get("waitUrl").endswith(f"/webhooks/twilio/{voice_channel.key}/voice/wait?lang=en&team={voice_channel.default_team_id}")
    assert enqueue.get("action").split("?")[0].endswith("/voice/dial")


def test_a_known_caller_is_greeted_in_their_language(voice_channel, call):
    set_settings(voice_channel, greeting={"en": "Welcome.", "pl": "Dzień dobry, tu Omnicenter."})
    customer = CustomerFactory(language="pl")
    IdentityFactory(customer=customer, kind="phone", value=CUSTOMER_PHONE)
    root = tree(call())
    assert root[0].text == "Dzień dobry, tu Omnicenter." and root[0].get("language") == "pl-PL"


def test_outside_business_hours_the_caller_can_ask_for_a_callback_or_leave_a_message(voice_channel, call):
    today = timezone.now().weekday()
    set_settings(voice_channel, business_hours=[{"days": [d for d in range(7) if d != today], "start": "00:00", "end": "23:59"}],
                 closed_message={"en": "We are closed."})
    root = tree(call())
    assert tags(root) == ["Say", "Say", "Gather", "Redirect"]
    assert root[1].text == "We are closed."
    gather = root[2]
    assert gather.get("numDigits") == "1" and gather.get("action").split("?")[0].endswith("/voice/options")
    assert root[3].text.split("?")[0].endswith("/voice/voicemail")


def test_business_hours_follow_the_channels_time_zone(voice_channel):
    voice_channel.settings = {**voice_channel.settings, "timezone": "Europe/Warsaw",
                              "business_hours": [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]}
    monday_0830_utc = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)  # 09:30 in Warsaw
    monday_1630_utc = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # 17:30 in Warsaw
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert twiml.is_open(voice_channel, monday_0830_utc)
    assert not twiml.is_open(voice_channel, monday_1630_utc)
    assert not twiml.is_open(voice_channel, saturday)


def test_the_menu_routes_digits_to_teams_and_rings_that_teams_ready_agents(voice_channel, call, people):
    set_settings(voice_channel, menu=[{"digit": "1", "team": people.team_a.pk, "label": "orders"},
                                      {"digit": "2", "team": people.team_b.pk, "label": "billing"}])
    root = tree(call())
    assert tags(root) == ["Say", "Gather", "Redirect"]
    assert [c.tag for c in root[1]] == ["Say"]
    assert root[1][0].text == "For orders, press 1. For billing, press 2."
    ready(people.agent_a, people.agent_b)
    root = tree(call("menu", "?lang=en", Digits="2"))
    [dial] = root
    assert dial.tag == "Dial" and dial.get("timeout") == "20"
    assert dial.get("action").split("?")[0].endswith("/voice/dial")
    identities = [c.find("Identity").text for c in dial]
    assert identities == [f"agent-{people.agent_b.pk}"]  # team B only
    client = dial[0]
    assert client.get("statusCallbackEvent") == "answered"
    assert {p.get("name"): p.get("value") for p in client.findall("Parameter")}["caller"] == CUSTOMER_PHONE
    # The choice is recorded on the call and the ticket goes to team B.
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.data["call"]["menu_digit"] == "2"
    assert entry.ticket.team == people.team_b


def test_an_agent_who_is_away_or_offline_is_not_rung_even_with_a_registered_device(voice_channel, call, people):
    from tickets.services import presence_set

    ready(people.agent_a)
    presence_set(user=people.agent_a, status="away", manual=True)

    assert twiml.ready_agents(people.team_a.pk) == []
    presence_set(user=people.agent_a, status="online", manual=True)
    assert twiml.ready_agents(people.team_a.pk) == [people.agent_a.pk]


def test_at_most_ten_clients_are_rung(voice_channel, call, people):
    agents = [UserFactory(username=f"ringer{i}", role="agent", teams=[people.team_a]) for i in range(12)]
    ready(*agents)
    [dial] = tree(call())[1:]
    assert len(dial.findall("Client")) == twiml.MAX_CLIENTS
    rung = {c.find("Identity").text for c in dial}
    # The most recently registered ten.
    assert rung == {f"agent-{a.pk}" for a in agents[2:]}


def test_a_known_callers_profile_is_passed_to_the_agents_browser(voice_channel, call, people):
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="phone", value=CUSTOMER_PHONE)
    ready(people.agent_a)
    [dial] = tree(call())[1:]
    params = {p.get("name"): p.get("value") for p in dial[0].findall("Parameter")}
    assert params["customer_url"] == f"/app/customers/{customer.pk}/"


def test_queue_wait_announces_the_position_and_lets_the_caller_leave(voice_channel, call):
    root = tree(call("wait", "?lang=en", QueuePosition="3", QueueTime="20"))
    assert tags(root) == ["Gather", "Pause"]
    assert "number 3 in line" in root[0][0].text
    assert root[0].get("action").split("?")[0].endswith("/voice/leave")
    assert tags(tree(call("leave", "?lang=en", Digits="5"))) == ["Leave"]
    # Waited long enough: out of the queue, on to voicemail or a callback.
    assert tags(tree(call("wait", "?lang=en", QueuePosition="1", QueueTime="180"))) == ["Leave"]


def test_a_caller_who_hangs_up_in_the_queue_is_an_abandoned_call(voice_channel, call):
    root = tree(call("dial", "?lang=en", QueueResult="hangup"))
    assert tags(root) == ["Hangup"]
    assert TimelineEntry.objects.get(kind="call").data["call"]["outcome"] == "abandoned"


def test_the_whole_call_no_answer_voicemail_recording_and_unavailable_transcription(voice_channel, call, people, twilio_api):
    ready(people.agent_a)
    assert tags(tree(call())) == ["Say", "Dial"]
    assert tags(tree(call())) == ["Say", "Dial"]  # Twilio retried: same TwiML, still one call entry
    root = tree(call("dial", "?lang=en", DialCallStatus="no-answer"))
    assert tags(root) == ["Say", "Gather", "Redirect"]
    root = tree(call("voicemail", "?lang=en"))
    assert tags(root) == ["Say", "Record"]
    record = root[1]
    assert record.get("maxLength") == "120" and record.get("transcribe") == "true"
    assert record.get("transcribeCallback").endswith("/voice/transcription")
    assert record.get("recordingStatusCallback").endswith("/voice/recording")
    assert tags(tree(call("recorded", "?lang=en", RecordingUrl="x"))) == ["Say", "Hangup"]

    twilio_api.respond(status=200, body=MP3, content_type="audio/mpeg")
    recording_url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE123"
    response = call("recording", RecordingSid="RE123", RecordingStatus="completed", RecordingUrl=recording_url,
                    RecordingDuration="14")
    assert response.status_code == 204
    [download] = twilio_api.requests
    assert download.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE123.mp3"
    assert download.header("Authorization") == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert call("transcription", RecordingSid="RE123", TranscriptionStatus="failed").status_code == 204
    assert call("status", CallStatus="completed", CallDuration="40", SequenceNumber="3").status_code == 204

    entry = TimelineEntry.objects.get(kind="call")
    assert TimelineEntry.objects.filter(kind="call").count() == 1
    data = entry.data["call"]
    assert data["outcome"] == "voicemail"
    assert data["duration"] == 40 and data["status"] == "completed"
    assert data["recording"]["duration"] == 14
    assert data["transcription_state"] == "unavailable"
    attachment = Attachment.objects.get(entry=entry)
    assert attachment.content_type == "audio/mpeg"
    assert entry.identity.value == CUSTOMER_PHONE
    assert entry.ticket.customer == entry.identity.customer


def test_a_transcription_lands_in_the_calls_text(voice_channel, call, twilio_api):
    twilio_api.respond(status=200, body=MP3, content_type="audio/mpeg")
    call("recording", RecordingSid="RE9", RecordingStatus="completed", RecordingDuration="30",
         RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE9")
    call("transcription", RecordingSid="RE9", TranscriptionStatus="completed", TranscriptionText="Please call me about my order.")
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.data["call"]["transcription_state"] == "completed"
    assert "Please call me about my order." in entry.text


@pytest.mark.parametrize("seconds", ["1", "121", "300"])
def test_recordings_twilio_cannot_transcribe_are_kept_and_marked(voice_channel, call, twilio_api, seconds):
    twilio_api.respond(status=200, body=MP3, content_type="audio/mpeg")
    call("recording", RecordingSid="RE7", RecordingStatus="completed", RecordingDuration=seconds,
         RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE7")
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.data["call"]["transcription_state"] == "unavailable"
    assert Attachment.objects.filter(entry=entry).count() == 1


def test_long_voicemails_are_recorded_without_transcription(voice_channel, call):
    set_settings(voice_channel, voicemail_max_length=300)
    record = tree(call("voicemail", "?lang=en"))[1]
    assert record.get("maxLength") == "300"
    assert record.get("transcribe") is None


def test_pressing_the_key_requests_a_callback_on_the_ticket(voice_channel, call, people):
    from tickets.models import CallbackRequest

    root = tree(call("options", "?lang=en", Digits="1"))
    assert tags(root) == ["Say", "Hangup"]
    tree(call("options", "?lang=en", Digits="1"))  # repeated: still one request
    [callback] = CallbackRequest.objects.all()
    call_entry = TimelineEntry.objects.get(kind="call")
    assert callback.ticket_id == call_entry.ticket_id and callback.phone == CUSTOMER_PHONE
    assert callback.done_at is None and callback.preferred_at <= timezone.now()
    assert call_entry.data["call"]["outcome"] == "callback"
    # The workspace's "Callbacks due" view lists tickets tagged `callback`.
    assert list(call_entry.ticket.tags.values_list("name", flat=True)) == ["callback"]
    [note] = TimelineEntry.objects.filter(kind="event", data__action="callback_requested")
    assert note.data["callback"] == callback.pk and note.data["call_entry"] == call_entry.pk
    assert list(twilio_selectors.callbacks_due(tickets_visible_to(people.agent_a))) == [callback]
    assert list(twilio_selectors.callbacks_due(tickets_visible_to(people.agent_b))) == []


def test_any_other_key_goes_to_voicemail(voice_channel, call):
    assert tags(tree(call("options", "?lang=en", Digits="9"))) == ["Say", "Record"]
    assert not TimelineEntry.objects.filter(data__action="callback_requested").exists()


def test_the_answering_agent_is_recorded_and_gets_the_ticket(voice_channel, call, people):
    call()
    response = call("answered", CallSid="CAchild", ParentCallSid=CALL, To=f"client:agent-{people.agent_a.pk}",
                    CallStatus="in-progress")
    assert response.status_code == 204
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.data["call"]["answered_by"] == people.agent_a.pk
    assert entry.data["call"]["outcome"] == "answered"
    assert Ticket.objects.get(pk=entry.ticket_id).assignee == people.agent_a


def test_a_missed_call_opens_a_ticket(voice_channel, call):
    call()
    call("status", CallStatus="no-answer", SequenceNumber="1")
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.data["call"]["outcome"] == "missed"
    assert entry.ticket.status == "new"


def test_voice_webhooks_need_a_valid_signature(voice_channel, twilio_post):
    response = twilio_post(f"/webhooks/twilio/{voice_channel.key}/voice", fixture("voice_incoming"), sign="d3Jvbmc=")
    assert response.status_code == 403
    assert InboundEvent.objects.count() == 0
    assert twilio_post(f"/webhooks/twilio/{voice_channel.key}/voice/nothing", fixture("voice_incoming")).status_code == 404
    voice_channel.refresh_from_db()
    assert voice_channel.rejected_requests == 1


def test_the_browser_calls_a_customer_with_the_channels_number(voice_channel, twilio_post, people):
    path = f"/webhooks/twilio/{voice_channel.key}/voice/client"
    root = tree(twilio_post(path, {"From": f"client:agent-{people.agent_a.pk}", "To": "+48 601 234 567", "CallSid": "CAout"}))
    [dial] = root
    assert dial.get("callerId") == voice_channel.settings["phone_number"]
    assert dial.find("Number").text == CUSTOMER_PHONE
    root = tree(twilio_post(path, {"From": f"client:agent-{people.agent_a.pk}", "To": f"queue:{people.team_a.pk}", "CallSid": "CAq"}))
    assert root[0].find("Queue").text == f"{voice_channel.key}-team-{people.team_a.pk}"
    # Another team's queue is not theirs to take.
    root = tree(twilio_post(path, {"From": f"client:agent-{people.agent_a.pk}", "To": f"queue:{people.team_b.pk}", "CallSid": "CAq2"}))
    assert tags(root) == ["Say"]
    assert twilio_post(path, {"From": "client:agent-999999", "To": CUSTOMER_PHONE, "CallSid": "CAx"}).status_code == 403


def test_agents_get_a_voice_access_token(voice_channel, client, people):
    client.force_login(people.agent_a)
    response = client.get("/app/voice/token/")
    assert response.status_code == 200
    body = response.json()
    assert body["identity"] == f"agent-{people.agent_a.pk}"
    claims = jwt.decode(body["token"], "api-key-secret-0123456789abcdefghijklmnop", algorithms=["HS256"])
    assert claims["iss"] == "SK" + "b" * 32 and claims["sub"] == ACCOUNT_SID
    assert claims["grants"]["identity"] == f"agent-{people.agent_a.pk}"
    assert claims["grants"]["voice"] == {"incoming": {"allow": True}, "outgoing": {"application_sid": "AP" + "c" * 32}}
    assert response["Cache-Control"] == "no-store"
    assert body["queues"] == [{"team": people.team_a.pk, "name": people.team_a.name}]


def test_tokens_are_for_signed_in_agents_only(voice_channel, client):
    assert client.get("/app/voice/token/").status_code == 302  # to sign in
    nobody = UserFactory(username="no_role")
    client.force_login(nobody)
    assert client.get("/app/voice/token/").status_code == 404
    assert twiml.ready_agents(None) == []


def test_without_a_browser_calling_setup_there_is_no_token(voice_channel, client, people):
    set_settings(voice_channel, twiml_app_sid="")
    client.force_login(people.agent_a)
    assert client.get("/app/voice/token/").status_code == 404


def test_the_call_entry_reads_as_a_summary(voice_channel, call, people, twilio_api):
    twilio_api.respond(status=200, body=MP3, content_type="audio/mpeg")
    call()
    call("answered", CallSid="CAchild", ParentCallSid=CALL, To=f"client:agent-{people.agent_a.pk}")
    call("status", CallStatus="completed", CallDuration="95", SequenceNumber="2")
    text = TimelineEntry.objects.get(kind="call").text
    assert text.startswith(f"Call from {CUSTOMER_PHONE}, answered, answered by ")
    assert text.endswith("95 s")


def test_a_click_to_call_from_a_ticket_is_an_outbound_call_on_that_ticket(voice_channel, twilio_post, people,
                                                                       django_capture_on_commit_callbacks):
    from tests.factories import TicketFactory

    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="phone", value=CUSTOMER_PHONE)
    ticket = TicketFactory(customer=customer, team=people.team_a)
    path = f"/webhooks/twilio/{voice_channel.key}/voice/client"
    params = {"From": f"client:agent-{people.agent_a.pk}", "To": CUSTOMER_PHONE, "CallSid": "CAparent", "ticket": str(ticket.pk)}
    with django_capture_on_commit_callbacks(execute=True):
        tree(twilio_post(path, params))
        tree(twilio_post(path, params))  # repeated by Twilio: still one entry
        status = {"CallSid": "CAleg", "ParentCallSid": "CAparent", "From": voice_channel.settings["phone_number"],
                  "To": CUSTOMER_PHONE, "CallStatus": "completed", "CallDuration": "61", "SequenceNumber": "3"}
        assert twilio_post(f"/webhooks/twilio/{voice_channel.key}/voice/status", status).status_code == 204
    [entry] = TimelineEntry.objects.filter(kind="call")
    assert entry.ticket == ticket and entry.direction == "out"
    assert entry.author_user == people.agent_a and entry.identity.value == CUSTOMER_PHONE
    assert entry.data["call"]["duration"] == 61 and entry.data["call"]["outcome"] == "answered"


def test_a_click_to_call_cannot_land_on_a_ticket_the_agent_cannot_see(voice_channel, twilio_post, people,
                                                                    django_capture_on_commit_callbacks):
    from tests.factories import TicketFactory

    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="phone", value=CUSTOMER_PHONE)
    hidden = TicketFactory(customer=customer, team=people.team_b)
    params = {"From": f"client:agent-{people.agent_a.pk}", "To": CUSTOMER_PHONE, "CallSid": "CAp2", "ticket": str(hidden.pk)}
    with django_capture_on_commit_callbacks(execute=True):
        tree(twilio_post(f"/webhooks/twilio/{voice_channel.key}/voice/client", params))
    entry = TimelineEntry.objects.get(kind="call")
    assert entry.ticket != hidden
    assert entry.ticket.assignee == people.agent_a


def test_incoming_call_twiml_costs_the_same_queries_for_one_or_twelve_ready_agents(voice_channel, twilio_post, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    path = f"/webhooks/twilio/{voice_channel.key}/voice"
    ready(people.agent_a)
    with CaptureQueriesContext(connection) as one:
        tree(twilio_post(path, fixture("voice_incoming", CallSid="CA1")))
    ready(*[UserFactory(username=f"many{i}", role="agent", teams=[people.team_a]) for i in range(11)])
    with CaptureQueriesContext(connection) as twelve:
        root = tree(twilio_post(path, fixture("voice_incoming", CallSid="CA2")))
    assert len(root[1].findall("Client")) == 10
    assert len(twelve) == len(one) <= 8


def test_a_callback_asked_for_after_hours_is_due_at_the_next_opening(voice_channel, people):
    voice_channel.settings = {**voice_channel.settings, "timezone": "Europe/Warsaw",
                              "business_hours": [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]}
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 19:00 in Warsaw
    assert twiml.next_open(voice_channel, friday_evening) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00
    monday_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert twiml.next_open(voice_channel, monday_noon) == monday_noon
    early = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 07:00 in Warsaw
    assert twiml.next_open(voice_channel, early) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_a_callback_asked_for_while_open_is_due_now(voice_channel, call, people):
    from tickets.models import CallbackRequest

    before = timezone.now()
    call("options", "?lang=en", Digits="1")
    assert before <= CallbackRequest.objects.get().preferred_at <= timezone.now()


def test_web_chat_or_the_portal_can_request_a_callback_on_a_ticket(voice_channel, people, django_capture_on_commit_callbacks):
    from channels_inbound.twilio import calls
    from tests.factories import TicketFactory

    ticket = TicketFactory(team=people.team_a, assignee=people.agent_a)
    today = timezone.now().weekday()
    voice_channel.settings = {**voice_channel.settings, "business_hours": [
        {"days": [(today + 1) % 7], "start": "09:00", "end": "10:00"}]}
    with django_capture_on_commit_callbacks(execute=True):
        callback = calls.callback_request(ticket=ticket, number="+48601234567", source="webchat", channel=voice_channel)
    assert callback.preferred_at > timezone.now()  # closed now: due at tomorrow's opening
    assert callback.note == "webchat"
    assert list(twilio_selectors.callbacks_due(tickets_visible_to(people.agent_a))) == [callback]
    ticket.refresh_from_db()
    assert ticket.version > 1 and "callback" in ticket.tags.values_list("name", flat=True)


def test_a_withheld_number_cannot_be_called_back_but_the_wish_is_noted(voice_channel, call):
    from tickets.models import CallbackRequest

    call("options", "?lang=en", Digits="1", From="anonymous", Caller="anonymous")
    assert not CallbackRequest.objects.exists()
    assert "withheld" in TimelineEntry.objects.get(data__action="callback_requested").text
