"""`/ws/widget/<key>/` against the real ASGI server (uvicorn) with a real websocket client."""

from __future__ import annotations

import base64
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from channels_inbound.models import InboundEvent
from customers.models import Identity
from tests.channels_inbound.webchat.conftest import (
    SITE,
    WAIT,
    _open_sockets,
    agent_message,
    frame,
    new_token,
    say,
    signed_in,
    widget_socket,
)
from tickets.models import Ticket, TimelineEntry

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi"),
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"),
]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def closed_with(ws, timeout: float = WAIT) -> int:
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as info:
        while time.monotonic() < deadline:
            ws.recv(timeout=timeout)
    return info.value.rcvd.code


def test_no_auth_frame_in_time_is_closed_with_4401(asgi_server, chat, settings):
    settings.WEBCHAT_AUTH_TIMEOUT = 1
    ws = widget_socket(asgi_server, chat.channel)
    started = time.monotonic()

    code = closed_with(ws)

    assert code == 4401
    assert time.monotonic() - started >= 0.9


def test_a_forged_token_is_refused_with_4401(asgi_server, chat):
    token = new_token(asgi_server, chat.channel)
    ws = widget_socket(asgi_server, chat.channel)
    ws.send(json.dumps({"type": "auth", "token": token[:-2] + "xx"}))

    assert frame(ws, "error")["code"] == "unauthorized"
    assert closed_with(ws) == 4401


def test_a_token_of_another_chat_channel_is_refused(asgi_server, chat):
    from tests.factories import make_channel

    other, _secrets = make_channel(kind="webchat", name="Other site", settings_data={"allowed_origins": [SITE]})
    token = new_token(asgi_server, other)
    ws = widget_socket(asgi_server, chat.channel)
    ws.send(json.dumps({"type": "auth", "token": token}))

    assert closed_with(ws) == 4401


def test_a_message_before_auth_closes_the_socket(asgi_server, chat):
    ws = widget_socket(asgi_server, chat.channel)
    ws.send(json.dumps({"type": "message", "id": "m1", "text": "hi"}))

    assert closed_with(ws) == 4401
    assert not InboundEvent.objects.exists()


def test_a_site_not_on_the_allow_list_cannot_open_the_socket_or_get_a_token(asgi_server, chat):
    with pytest.raises(InvalidStatus) as info:
        widget_socket(asgi_server, chat.channel, origin="https://evil.example.net")
    assert info.value.response.status_code == 403

    import httpx

    response = httpx.post(f"{asgi_server.url}/widget/{chat.channel.key}/session", content="{}",
                          headers={"Origin": "https://evil.example.net"})
    assert response.status_code == 403


def test_an_unknown_or_inactive_channel_refuses_the_socket(asgi_server, chat):
    chat.channel.is_active = False
    chat.channel.save(update_fields=["is_active"])
    with pytest.raises(InvalidStatus):
        widget_socket(asgi_server, chat.channel)


def test_the_first_ready_frame_carries_the_greeting_and_an_empty_history(asgi_server, chat):
    _ws, ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    assert ready["greeting"] == "Hello from the shop!"
    assert ready["history"] == []
    assert ready["open"] is True
    assert ready["visitor"] == {"verified": False, "known": False, "email": "", "email_verified": False}


def test_a_visitor_message_lands_on_a_ticket_through_the_spine(asgi_server, chat, people):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    ack = say(ws, "c-1", "Do you ship to Gdańsk? 🚚", profile={"name": "Ola", "email": "ola@example.pl"})

    assert ack["type"] == "ack" and ack["id"] == "c-1" and ack["duplicate"] is False
    entry = TimelineEntry.objects.select_related("ticket", "identity").get()
    assert entry.text == "Do you ship to Gdańsk? 🚚"
    assert ack["message"]["id"] == str(entry.public_id)
    assert entry.ticket.team == people.team_a
    assert entry.ticket.origin_channel == chat.channel
    assert entry.identity.kind == Identity.Kind.VISITOR and entry.identity.namespace == chat.channel.key
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    # The typed email is a claim on the visitor's own customer, never someone's verified address.
    email = Identity.objects.get(kind="email", value="ola@example.pl")
    assert email.verified is False and email.customer == entry.ticket.customer
    assert entry.ticket.customer.display_name == "Ola"


def test_an_email_typed_by_a_visitor_does_not_attach_to_the_customer_who_owns_it(asgi_server, chat, people):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    say(ws, "c-1", "I am Anna, show me my orders", profile={"email": "anna@example.pl"})

    ticket = Ticket.objects.get()
    assert ticket.customer != people.customer
    assert Identity.objects.get(kind="email", value="anna@example.pl", verified=True).customer == people.customer


def test_a_repeated_client_id_is_not_stored_twice(asgi_server, chat):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    first = say(ws, "same-id", "Hello?")
    second = say(ws, "same-id", "Hello?")

    assert second["type"] == "ack" and second["duplicate"] is True
    assert second["message"]["id"] == first["message"]["id"]
    assert TimelineEntry.objects.count() == 1
    assert InboundEvent.objects.count() == 1


def test_the_next_message_joins_the_same_ticket(asgi_server, chat):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    say(ws, "a", "First")
    say(ws, "b", "Second")

    assert Ticket.objects.count() == 1
    assert list(TimelineEntry.objects.values_list("text", flat=True)) == ["First", "Second"]


def test_an_agent_reply_reaches_the_visitor_live_and_receipts_come_back(asgi_server, chat, people):
    from tickets.services import ticket_reply

    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    say(ws, "c-1", "Is the blue one in stock?")
    ticket = Ticket.objects.get()

    reply = ticket_reply(ticket=ticket, by=people.agent_a, text="Yes, 3 left.")

    pushed = agent_message(ws)
    assert pushed == {**pushed, "id": str(reply.public_id), "from": "agent", "text": "Yes, 3 left.",
                      "author": people.agent_a.first_name}
    reply.refresh_from_db()
    assert reply.delivery_status == TimelineEntry.Delivery.SENT
    ws.send(json.dumps({"type": "read", "ids": [pushed["id"]]}))
    ws.send(json.dumps({"type": "ping"}))
    frame(ws, "pong")
    reply.refresh_from_db()
    assert reply.delivery_status == TimelineEntry.Delivery.READ


def test_a_reply_sent_while_the_visitor_was_away_comes_with_the_catch_up(asgi_server, chat, people):
    from tickets.services import ticket_reply

    token = new_token(asgi_server, chat.channel)
    ws, _ready = signed_in(asgi_server, chat.channel, token)
    mine = say(ws, "c-1", "Call me maybe")["message"]
    ws.close()

    ticket_reply(ticket=Ticket.objects.get(), by=people.agent_a, text="Sure, tomorrow at 10.")

    ws, ready = signed_in(asgi_server, chat.channel, token, after=mine["id"])
    assert [m["text"] for m in ready["history"]] == ["Sure, tomorrow at 10."]
    ws.close()
    _ws, full = signed_in(asgi_server, chat.channel, token)
    assert [(m["from"], m["text"]) for m in full["history"]] == [("visitor", "Call me maybe"), ("agent", "Sure, tomorrow at 10.")]


def test_another_visitor_cannot_read_or_touch_a_conversation(asgi_server, chat, people):
    from tickets.services import ticket_add_note, ticket_reply

    alice_token = new_token(asgi_server, chat.channel)
    alice, _ready = signed_in(asgi_server, chat.channel, alice_token)
    mine = say(alice, "c-1", "My address is Main St 1")["message"]
    ticket = Ticket.objects.get()
    ticket_add_note(ticket=ticket, by=people.agent_a, text="internal: VIP")

    bob, bob_ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    assert bob_ready["history"] == []
    bob.close()
    bob, bob_ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel), after=mine["id"])
    assert bob_ready["history"] == []

    reply = ticket_reply(ticket=ticket, by=people.agent_a, text="Noted, Alice.")
    assert agent_message(alice)["text"] == "Noted, Alice."
    bob.send(json.dumps({"type": "read", "ids": [str(reply.public_id)]}))
    bob.send(json.dumps({"type": "ping"}))
    seen_by_bob = []
    while (data := json.loads(bob.recv(timeout=WAIT)))["type"] != "pong":
        seen_by_bob.append(data)
    assert seen_by_bob == []
    reply.refresh_from_db()
    assert reply.delivery_status == TimelineEntry.Delivery.SENT
    # Alice's own history has no internal note.
    _alice2, again = signed_in(asgi_server, chat.channel, alice_token)
    assert [m["text"] for m in again["history"]] == ["My address is Main St 1", "Noted, Alice."]


def test_too_long_or_empty_messages_get_an_error_frame_and_store_nothing(asgi_server, chat, settings):
    settings.WEBCHAT_MAX_MESSAGE_CHARS = 50
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    too_long = say(ws, "c-1", "x" * 51)
    empty = say(ws, "c-2", "   ")
    bad_id = say(ws, "no spaces allowed", "hi")

    assert (too_long["code"], too_long["ref"]) == ("too_long", "c-1")
    assert "50" in too_long["message"]
    assert empty["code"] == "empty"
    assert bad_id["code"] == "bad_request"
    assert not InboundEvent.objects.exists()


def test_a_visitor_sending_too_fast_is_told_to_wait(asgi_server, chat, settings):
    settings.WEBCHAT_RATE_VISITOR = 2
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    answers = [say(ws, f"c-{i}", f"message {i}")["type"] for i in range(3)]
    limited = say(ws, "c-9", "again")

    assert answers[:2] == ["ack", "ack"]
    assert "error" in (answers[2], limited["type"])
    assert limited["code"] == "rate_limited"
    assert TimelineEntry.objects.count() <= 2


def test_an_invalid_email_in_the_form_is_refused(asgi_server, chat):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    answer = say(ws, "c-1", "hi", profile={"email": "not-an-email"})

    assert answer["code"] == "invalid_email"
    assert not TimelineEntry.objects.exists()


def test_pictures_are_stored_and_other_files_refused(asgi_server, chat, settings):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    exe = say(ws, "c-1", "", attachments=[{"name": "photo.png", "type": "image/png",
                                            "data": base64.b64encode(b"MZ\x90\x00" + bytes(200)).decode()}])
    png = say(ws, "c-2", "here", attachments=[{"name": "photo.png", "type": "image/png", "data": base64.b64encode(PNG).decode()}])
    settings.WEBCHAT_ATTACHMENT_MAX_BYTES = 10
    big = say(ws, "c-3", "", attachments=[{"name": "photo.png", "data": base64.b64encode(PNG).decode()}])

    assert exe["code"] == "file_type"
    assert big["code"] == "file_too_large"
    assert png["type"] == "ack"
    [attachment] = png["message"]["attachments"]
    assert attachment["type"] == "image/png" and attachment["name"] == "photo.png"
    import httpx

    download = httpx.get(attachment["url"].replace("http://127.0.0.1:8000", asgi_server.url))
    assert download.status_code == 200 and download.content == PNG
    assert httpx.get(f"{asgi_server.url}/widget/files/forged:token").status_code == 404


def test_a_callback_request_opens_its_own_ticket(asgi_server, chat, people):
    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    say(ws, "c-1", "Hello")

    ws.send(json.dumps({"type": "callback", "id": "cb-1", "phone": "+48 600 700 800", "time": "after 17:00"}))
    ack = frame(ws, "ack")

    assert "+48 600 700 800" in ack["message"]["text"] and "after 17:00" in ack["message"]["text"]
    assert Ticket.objects.count() == 2
    assert Identity.objects.get(kind="phone").value == "+48600700800"
    # It is a callback request the workspace's "Callbacks due" lists, once even if sent twice.
    ws.send(json.dumps({"type": "callback", "id": "cb-1", "phone": "+48 600 700 800", "time": "after 17:00"}))
    frame(ws, "ack")
    from tickets import inbox
    from tickets.models import CallbackRequest

    [request] = CallbackRequest.objects.all()
    assert (request.phone, request.done_at) == ("+48600700800", None) and "after 17:00" in request.note
    assert list(inbox.ticket_list(people.supervisor, "callbacks", {})) == [request.ticket]
    ws.send(json.dumps({"type": "callback", "id": "cb-2", "phone": "not a phone", "time": ""}))
    assert frame(ws, "error")["code"] == "invalid_phone"
    assert CallbackRequest.objects.count() == 1


def test_outside_business_hours_the_widget_is_told_it_is_closed(asgi_server, chat):
    chat.channel.settings = {**chat.channel.settings, "offline_message": "Back Monday 9:00",
                             "business_hours": {"timezone": "Europe/Warsaw", "days": {}}}
    chat.channel.save(update_fields=["settings"])

    _ws, ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))

    assert ready["open"] is False
    assert ready["offline_message"] == "Back Monday 9:00"


def test_typing_goes_from_visitor_to_agents_of_the_team_and_back(asgi_server, chat, people, client):
    from tests.servers import session_key_for

    visitor, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    say(visitor, "c-1", "hello")
    ticket = Ticket.objects.get()
    agent = asgi_server.agent_socket(session_key_for(people.agent_a))
    _open_sockets.append(agent)

    visitor.send(json.dumps({"type": "typing"}))

    assert frame(agent, "chat.typing") == {"type": "chat.typing", "chat_ticket": ticket.pk}
    client.force_login(people.agent_a)
    assert client.post(f"/app/webchat/tickets/{ticket.pk}/typing/").json() == {"visitors": 1}
    assert frame(visitor, "typing") == {"type": "typing", "from": "agent"}
    client.post(f"/app/webchat/tickets/{ticket.pk}/typing/", {"state": "seen"})
    assert frame(visitor, "seen") == {"type": "seen"}
    client.force_login(people.agent_b)
    assert client.post(f"/app/webchat/tickets/{ticket.pk}/typing/").status_code == 404


def test_a_survey_is_shown_inline_and_the_rating_reaches_the_survey_hook(asgi_server, chat):
    from channels_inbound.webchat import services

    answers = []
    handlers = list(services.survey_answer_handlers)
    services.survey_answer_handlers[:] = [lambda **kw: answers.append(kw)]
    try:
        token = new_token(asgi_server, chat.channel)
        ws, _ready = signed_in(asgi_server, chat.channel, token)
        say(ws, "c-1", "thanks, bye")
        visitor_id = Identity.objects.get(kind="visitor").value

        assert services.survey_prompt_send(channel=chat.channel, visitor_id=visitor_id, survey_id="s-1", question="Rate us?")
        assert frame(ws, "survey") == {"type": "survey", "id": "s-1", "question": "Rate us?", "scale": [1, 5]}
        ws.send(json.dumps({"type": "survey_answer", "id": "s-1", "rating": 6}))
        assert frame(ws, "error")["code"] == "bad_request"
        ws.send(json.dumps({"type": "survey_answer", "id": "s-1", "rating": 4}))
        frame(ws, "survey_thanks")
    finally:
        services.survey_answer_handlers[:] = handlers
    [answer] = answers
    assert (answer["survey_id"], answer["rating"], answer["identity"].value) == ("s-1", 4, visitor_id)
    ws.close()
    deadline = time.monotonic() + WAIT
    while services.visitor_is_online(channel_key=chat.channel.key, visitor_id=visitor_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not services.survey_prompt_send(channel=chat.channel, visitor_id=visitor_id, survey_id="s-2")


def test_send_text_pushes_a_notice_to_an_online_visitor_only(asgi_server, chat):
    from channels_inbound import registry
    from channels_inbound.base import TransientSendError

    ws, _ready = signed_in(asgi_server, chat.channel, new_token(asgi_server, chat.channel))
    say(ws, "c-1", "hi")
    visitor_id = Identity.objects.get(kind="visitor").value
    adapter = registry.adapter_for("webchat")

    adapter.send_text(chat.channel, visitor_id, "Your ticket was solved.")

    assert frame(ws, "notice")["text"] == "Your ticket was solved."
    with pytest.raises(TransientSendError):
        adapter.send_text(chat.channel, "anon:nobody", "hello?")
