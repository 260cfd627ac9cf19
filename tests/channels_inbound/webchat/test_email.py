"""Email from the web chat: transcripts on request, email confirmation by a one-time code, and
replies emailed to visitors who left. Real SMTP (aiosmtpd), real PostgreSQL and Redis; the widget's
frames go through the HTTP fallback endpoint (the socket path is in test_email_socket.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from channels_inbound.models import WebchatEmailCode
from channels_inbound.webchat import mailing, services, tokens
from customers.models import Customer, CustomerMerge, Identity, MergeSuggestion
from tests.channels_inbound.webchat.conftest import SITE
from tests.factories import EntryFactory, IdentityFactory, TicketFactory
from tickets.models import Ticket, TimelineEntry
from tickets.services import ticket_add_note, ticket_reply

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_email_limits():
    """Hourly counters and pending batches live in Redis: earlier tests must not count here."""
    client = cache._cache.get_client(write=True)
    for pattern in ("*webchat-rate:*", "*webchat-offline-mail:*", "*webchat-polled:*", "*webchat-online:*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


@pytest.fixture
def mail_channel(people, smtp_server):
    return smtp_server.email_channel(people.team_a)


def configure(chat, **changes) -> None:
    chat.channel.settings = {**chat.channel.settings, **changes}
    chat.channel.save(update_fields=["settings"])


def new_visitor(client, chat) -> str:
    response = client.post(f"/widget/{chat.channel.key}/session", data=json.dumps({}), content_type="application/json",
                           HTTP_ORIGIN=SITE)
    assert response.status_code == 200
    return response.json()["token"]


def send(client, chat, token: str, frame: dict, *, origin: str = SITE):
    return client.post(f"/widget/{chat.channel.key}/send", data=json.dumps({"token": token, "frame": frame}),
                       content_type="application/json", HTTP_ORIGIN=origin)


def say(client, chat, token: str, client_id: str, text: str, **extra) -> dict:
    response = send(client, chat, token, {"type": "message", "id": client_id, "text": text, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def visitor_of(chat, token: str) -> tokens.Visitor:
    return tokens.read(token, channel_key=chat.channel.key)


def ticket_of(chat, token: str) -> Ticket:
    return services.visitor_ticket(visitor_of(chat, token))


def welcome(chat, token: str) -> dict:
    return services.visitor_welcome(channel=chat.channel, visitor=visitor_of(chat, token))


def body_of(mail) -> str:
    return mail.message().get_body(preferencelist=("plain",)).get_content()


def mails_to(smtp_server, address: str) -> list:
    return [m for m in smtp_server.messages if address in m.rcpt_tos]


# --- transcripts ---------------------------------------------------------------------------------


def test_a_visitor_gets_the_transcript_by_email_with_visible_messages_only(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    """Given a chat with a reply, an internal note, and other conversations of other visitors and
    of the same customer on email; when the visitor asks for the transcript; then one email arrives
    through the shop's email channel with the chat's messages, the agent's name as the widget shows
    it and times in the widget's language, and nothing else."""
    configure(chat, language="pl", email_offline_replies=False, team_name="Zespół sklepu")
    people.agent_a.first_name = "Ola"
    people.agent_a.save(update_fields=["first_name"])
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Gdzie jest moja paczka?", profile={"email": "visitor@example.net"})
    ticket = ticket_of(chat, token)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket, by=people.agent_a, text="Paczka jest w drodze.")
        ticket_add_note(ticket=ticket, by=people.agent_a, text="SECRET NOTE: customer is grumpy")
    other = new_visitor(client, chat)
    say(client, chat, other, "o-1", "OTHER VISITOR's question")
    EntryFactory(ticket=TicketFactory(customer=ticket.customer), channel=mail_channel,
                 identity=IdentityFactory(customer=ticket.customer, kind="email", value="visitor-mail@example.net"),
                 text="EMAIL CHANNEL message of the same customer", delivery_status="received")

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, chat, token, {"type": "transcript", "id": "t-1", "email": " Visitor@Example.NET ",
                                              "tz": "Europe/Warsaw"})

    assert response.status_code == 200, response.content
    assert response.json() == {"type": "transcript_queued", "id": "t-1", "email": "visitor@example.net"}
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["visitor@example.net"]
    assert mail.message()["From"].addresses[0].addr_spec == "support@shop.example.com"
    assert "Zespół sklepu" in mail.message()["Subject"]
    text = body_of(mail)
    assert "Gdzie jest moja paczka?" in text and "Paczka jest w drodze." in text
    assert "· Ola\n" in text  # the agent's first name, as in the widget
    assert "Europe/Warsaw" in text
    months = ("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września",
              "października", "listopada", "grudnia")
    assert any(month in text for month in months), text  # a Polish date
    for secret in ("SECRET NOTE", "OTHER VISITOR", "EMAIL CHANNEL"):
        assert secret not in text
    event = ticket.entries.get(kind=TimelineEntry.Kind.EVENT, data__action="webchat_transcript")
    assert event.data["to"] == "visitor@example.net" and event.data["verified"] is False
    assert event.data["state"] == "sent"


def test_an_unverified_visitor_typing_a_customers_email_gets_only_their_own_conversation(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    """Anna has a chat history on this channel; a stranger types anna@example.pl: the email goes to
    Anna's address, with the stranger's conversation only."""
    configure(chat, email_offline_replies=False)
    annas = IdentityFactory(customer=people.customer, kind="visitor", namespace=chat.channel.key, value="anon:annas-old")
    services.visitor_message_post(channel=chat.channel, visitor=tokens.Visitor(chat.channel.key, annas.value),
                                  client_id="a-1", text="ANNA's private question about her invoice")
    stranger = new_visitor(client, chat)
    say(client, chat, stranger, "s-1", "Stranger asks something", profile={"email": "anna@example.pl"})

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, chat, stranger, {"type": "transcript", "id": "t-1", "email": "anna@example.pl"})

    assert response.status_code == 200
    [mail] = mails_to(smtp_server, "anna@example.pl")
    text = body_of(mail)
    assert "Stranger asks something" in text
    assert "ANNA" not in text and "invoice" not in text
    assert ticket_of(chat, stranger).customer_id != people.customer.pk


def test_transcripts_are_rate_limited_per_visitor(client, chat, mail_channel, smtp_server,
                                                  django_capture_on_commit_callbacks, settings):
    configure(chat, email_offline_replies=False)
    settings.WEBCHAT_RATE_TRANSCRIPTS = 2
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [send(client, chat, token, {"type": "transcript", "id": f"t-{i}", "email": "v@example.net"})
                   for i in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == "rate_limited" and answers[2].json()["ref"] == "t-2"
    assert len(smtp_server.messages) == 2
    assert ticket_of(chat, token).entries.filter(data__action="webchat_transcript").count() == 2


def test_transcripts_are_rate_limited_per_ip_across_visitors(client, chat, mail_channel, smtp_server,
                                                             django_capture_on_commit_callbacks, settings):
    configure(chat, email_offline_replies=False)
    settings.WEBCHAT_RATE_TRANSCRIPTS_IP = 2
    visitors = [new_visitor(client, chat) for _ in range(3)]
    for n, token in enumerate(visitors):
        say(client, chat, token, f"m-{n}", "hello")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [send(client, chat, token, {"type": "transcript", "id": "t", "email": "v@example.net"})
                   for token in visitors]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert len(smtp_server.messages) == 2


@pytest.mark.parametrize(("frame", "code"), [
    ({"type": "transcript", "id": "t-1", "email": "not an address"}, "invalid_email"),
    ({"type": "transcript", "id": "t-1"}, "invalid_email"),
    ({"type": "transcript", "id": "t-1", "email": ["v@example.net"]}, "invalid_email"),
])
def test_a_bad_transcript_request_is_refused_and_changes_nothing(client, chat, mail_channel, smtp_server,
                                                                 django_capture_on_commit_callbacks, frame, code):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")
    before = TimelineEntry.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, chat, token, frame)

    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["message"]
    assert TimelineEntry.objects.count() == before and smtp_server.messages == []


def test_a_visitor_without_a_conversation_gets_no_transcript(client, chat, mail_channel, smtp_server,
                                                             django_capture_on_commit_callbacks):
    token = new_visitor(client, chat)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "v@example.net"})

    assert response.status_code == 400 and response.json()["code"] == "no_conversation"
    assert smtp_server.messages == []


def test_transcript_requests_need_the_visitors_token_and_an_allowed_origin(client, chat, mail_channel, smtp_server):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")

    forged = send(client, chat, token[:-3] + "abc", {"type": "transcript", "id": "t", "email": "v@example.net"})
    foreign = send(client, chat, token, {"type": "transcript", "id": "t", "email": "v@example.net"},
                   origin="https://evil.example.org")

    assert (forged.status_code, foreign.status_code) == (401, 403)
    assert not TimelineEntry.objects.filter(data__action="webchat_transcript").exists()


def test_a_transcript_that_cannot_be_sent_is_retried_then_marked_failed(client, chat, mail_channel, smtp_server,
                                                                        django_capture_on_commit_callbacks):
    configure(chat, email_offline_replies=False)
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")
    smtp_server.refuse("data", "451 4.3.0 Try again later")

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "v@example.net"})

    assert response.status_code == 200  # accepted: sending is the task's business
    event = ticket_of(chat, token).entries.get(data__action="webchat_transcript")
    assert event.data["state"] == "failed" and "451" in event.data["error"]
    assert smtp_server.messages == []


def test_without_an_email_channel_the_default_mailer_sends_it(client, chat, people, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    configure(chat, email_offline_replies=False)
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello there")
    with django_capture_on_commit_callbacks(execute=True):
        send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "v@example.net"})

    [mail] = mailoutbox
    assert mail.to == ["v@example.net"] and "hello there" in mail.body


# --- one-time codes ------------------------------------------------------------------------------


def code_from(smtp_server, address: str) -> str:
    mail = mails_to(smtp_server, address)[-1]
    return re.search(r"\b(\d{6})\b", body_of(mail)).group(1)


def request_code(client, chat, token: str, email: str, captured) -> object:
    with captured(execute=True):
        return send(client, chat, token, {"type": "email_code", "id": "c-1", "email": email})


def confirm(client, chat, token: str, email: str, code: str):
    return send(client, chat, token, {"type": "email_confirm", "id": "v-1", "email": email, "code": code})


@pytest.fixture
def annas_old_chat(chat, people):
    """Anna chatted here before, from another browser her visitor identity is linked to."""
    annas = IdentityFactory(customer=people.customer, kind="visitor", namespace=chat.channel.key, value="anon:annas-old")
    services.visitor_message_post(channel=chat.channel, visitor=tokens.Visitor(chat.channel.key, annas.value),
                                  client_id="a-1", text="Anna's earlier question")
    return annas


def test_a_visitor_confirms_an_email_by_code_and_becomes_the_customer_who_has_it(
    client, chat, people, mail_channel, smtp_server, annas_old_chat, django_capture_on_commit_callbacks,
):
    configure(chat, email_offline_replies=False)
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Hi, it's Anna on my phone")
    visitors_customer = ticket_of(chat, token).customer
    before = welcome(chat, token)
    assert before["greeting"] == "Hello from the shop!"
    assert [m["text"] for m in before["history"]] == ["Hi, it's Anna on my phone"]

    sent = request_code(client, chat, token, "Anna@Example.pl", django_capture_on_commit_callbacks)
    assert sent.status_code == 200
    assert sent.json() == {"type": "email_code_sent", "id": "c-1", "email": "anna@example.pl", "minutes": 10}
    code = code_from(smtp_server, "anna@example.pl")
    row = WebchatEmailCode.objects.get()
    assert code not in row.code_hash and row.outbox == ""  # hashed at rest, the code itself gone once sent
    assert welcome(chat, token)["greeting"] == "Hello from the shop!"  # nothing before the code comes back

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(client, chat, token, "anna@example.pl", code)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["type"] == "email_verified" and answer["email"] == "anna@example.pl"
    assert answer["greeting"] == "Good to see you again, Anna Kowalska!"
    assert [m["text"] for m in answer["history"]] == ["Anna's earlier question", "Hi, it's Anna on my phone"]
    assert answer["visitor"] == {"verified": True, "known": True, "email": "anna@example.pl", "email_verified": True}
    visitor_identity = Identity.objects.get(kind="visitor", namespace=chat.channel.key, value=visitor_of(chat, token).id)
    assert visitor_identity.customer_id == people.customer.pk
    assert ticket_of(chat, token).customer_id == people.customer.pk
    merge = CustomerMerge.objects.get(into=people.customer)
    assert merge.other_id == visitors_customer.pk and merge.merged_by is None  # recorded, so it can be undone
    event = ticket_of(chat, token).entries.get(data__action="webchat_email_verified")
    assert event.data["email"] == "anna@example.pl" and event.data["merged"] is True
    again = welcome(chat, token)
    assert again["greeting"] == "Good to see you again, Anna Kowalska!" and again["visitor"]["verified"] is True


def test_confirming_a_new_email_makes_the_visitors_claim_a_verified_identity(
    client, chat, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello", profile={"name": "Zoe", "email": "zoe@example.net"})
    customer = ticket_of(chat, token).customer
    assert customer.identities.get(kind="email").verified is False

    request_code(client, chat, token, "zoe@example.net", django_capture_on_commit_callbacks)
    response = confirm(client, chat, token, "zoe@example.net", code_from(smtp_server, "zoe@example.net"))

    assert response.status_code == 200
    [email] = customer.identities.filter(kind="email")
    assert email.value == "zoe@example.net" and email.verified is True
    assert response.json()["greeting"] == "Good to see you again, Zoe!"
    assert not CustomerMerge.objects.exists()


def test_a_visitor_who_has_not_written_yet_is_linked_by_the_code(
    client, chat, people, mail_channel, smtp_server, annas_old_chat, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    request_code(client, chat, token, "anna@example.pl", django_capture_on_commit_callbacks)

    response = confirm(client, chat, token, "anna@example.pl", code_from(smtp_server, "anna@example.pl"))

    assert response.status_code == 200
    assert [m["text"] for m in response.json()["history"]] == ["Anna's earlier question"]
    assert Identity.objects.get(kind="visitor", value=visitor_of(chat, token).id).customer_id == people.customer.pk


def test_a_wrong_code_is_refused_and_changes_nothing_but_the_attempt_count(
    client, chat, people, mail_channel, smtp_server, annas_old_chat, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")
    request_code(client, chat, token, "anna@example.pl", django_capture_on_commit_callbacks)
    code = code_from(smtp_server, "anna@example.pl")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    customers, identities = Customer.objects.count(), list(Identity.objects.values_list("pk", "customer_id", "verified"))

    response = confirm(client, chat, token, "anna@example.pl", wrong)

    assert response.status_code == 400
    assert response.json()["code"] == "code_wrong" and response.json()["ref"] == "v-1"
    assert Customer.objects.count() == customers
    assert list(Identity.objects.values_list("pk", "customer_id", "verified")) == identities
    assert WebchatEmailCode.objects.get().attempts == 1
    after = welcome(chat, token)
    assert after["greeting"] == "Hello from the shop!" and [m["text"] for m in after["history"]] == ["hello"]


def test_brute_force_is_capped_even_the_right_code_fails_after_too_many_wrong_ones(
    client, chat, mail_channel, smtp_server, django_capture_on_commit_callbacks, settings,
):
    token = new_visitor(client, chat)
    request_code(client, chat, token, "anna@example.pl", django_capture_on_commit_callbacks)
    code = code_from(smtp_server, "anna@example.pl")
    guesses = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, settings.WEBCHAT_EMAIL_CODE_ATTEMPTS + 1)]

    codes = [confirm(client, chat, token, "anna@example.pl", guess).json()["code"] for guess in guesses]
    right = confirm(client, chat, token, "anna@example.pl", code)

    assert codes == ["code_wrong"] * settings.WEBCHAT_EMAIL_CODE_ATTEMPTS
    assert right.status_code == 400 and right.json()["code"] == "code_attempts"
    assert not Identity.objects.filter(kind="visitor", value=visitor_of(chat, token).id).exists()


def test_code_checks_are_rate_limited_per_visitor(client, chat, mail_channel, smtp_server,
                                                  django_capture_on_commit_callbacks, settings):
    settings.WEBCHAT_RATE_CODE_CHECKS = 3
    token = new_visitor(client, chat)
    codes = []
    for _ in range(2):  # a fresh code each time: the per-code cap is not what stops them here
        request_code(client, chat, token, "v@example.net", django_capture_on_commit_callbacks)
        codes.append(confirm(client, chat, token, "v@example.net", "000000").json()["code"])
        codes.append(confirm(client, chat, token, "v@example.net", "000001").json()["code"])

    assert codes[-1] == "rate_limited" and "rate_limited" not in codes[:3]


def test_a_code_for_one_email_cannot_confirm_another(client, chat, people, mail_channel, smtp_server,
                                                     django_capture_on_commit_callbacks):
    token = new_visitor(client, chat)
    request_code(client, chat, token, "mine@example.net", django_capture_on_commit_callbacks)
    code = code_from(smtp_server, "mine@example.net")

    response = confirm(client, chat, token, "anna@example.pl", code)

    assert response.status_code == 400 and response.json()["code"] == "code_expired"
    assert not Identity.objects.filter(kind="visitor", value=visitor_of(chat, token).id).exists()
    assert people.customer.identities.filter(kind="visitor").count() == 0


def test_another_visitors_token_cannot_use_the_code(client, chat, people, mail_channel, smtp_server,
                                                    django_capture_on_commit_callbacks):
    victim = new_visitor(client, chat)
    request_code(client, chat, victim, "anna@example.pl", django_capture_on_commit_callbacks)
    code = code_from(smtp_server, "anna@example.pl")
    attacker = new_visitor(client, chat)

    response = confirm(client, chat, attacker, "anna@example.pl", code)

    assert response.status_code == 400 and response.json()["code"] == "code_expired"
    assert people.customer.identities.filter(kind="visitor").count() == 0
    assert confirm(client, chat, victim, "anna@example.pl", code).status_code == 200  # still the victim's


def test_an_expired_or_used_code_is_refused(client, chat, mail_channel, smtp_server, django_capture_on_commit_callbacks):
    token = new_visitor(client, chat)
    request_code(client, chat, token, "v@example.net", django_capture_on_commit_callbacks)
    code = code_from(smtp_server, "v@example.net")
    WebchatEmailCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    expired = confirm(client, chat, token, "v@example.net", code)

    assert expired.json()["code"] == "code_expired"
    request_code(client, chat, token, "v@example.net", django_capture_on_commit_callbacks)
    fresh = code_from(smtp_server, "v@example.net")
    assert confirm(client, chat, token, "v@example.net", fresh).status_code == 200
    assert confirm(client, chat, token, "v@example.net", fresh).json()["code"] == "code_expired"


def test_only_the_newest_code_works(client, chat, mail_channel, smtp_server, django_capture_on_commit_callbacks):
    token = new_visitor(client, chat)
    request_code(client, chat, token, "v@example.net", django_capture_on_commit_callbacks)
    first = code_from(smtp_server, "v@example.net")
    request_code(client, chat, token, "v@example.net", django_capture_on_commit_callbacks)
    second = code_from(smtp_server, "v@example.net")

    if first != second:
        assert confirm(client, chat, token, "v@example.net", first).json()["code"] == "code_wrong"
    assert confirm(client, chat, token, "v@example.net", second).status_code == 200


def test_code_requests_are_rate_limited_per_visitor_and_per_address(
    client, chat, mail_channel, smtp_server, django_capture_on_commit_callbacks, settings,
):
    settings.WEBCHAT_RATE_EMAIL_CODES = 2
    one, two, three = (new_visitor(client, chat) for _ in range(3))

    same_visitor = [request_code(client, chat, one, f"v{n}@example.net", django_capture_on_commit_callbacks).status_code
                    for n in range(3)]
    same_address = [request_code(client, chat, t, "target@example.net", django_capture_on_commit_callbacks).status_code
                    for t in (two, three)] + [
        request_code(client, chat, new_visitor(client, chat), "target@example.net",
                     django_capture_on_commit_callbacks).status_code]

    assert same_visitor == [200, 200, 429]
    assert same_address == [200, 200, 429]
    assert len(mails_to(smtp_server, "target@example.net")) == 2


def test_code_requests_are_rate_limited_per_ip(client, chat, mail_channel, smtp_server,
                                               django_capture_on_commit_callbacks, settings):
    settings.WEBCHAT_RATE_EMAIL_CODES_IP = 2
    answers = [request_code(client, chat, new_visitor(client, chat), f"v{n}@example.net",
                            django_capture_on_commit_callbacks).status_code for n in range(3)]

    assert answers == [200, 200, 429]


def test_confirming_an_address_of_a_known_customer_from_another_known_customer_only_suggests_a_merge(people):
    """A visitor whose customer is someone (a verified phone) proves an address of another customer:
    the two are not merged automatically; a merge suggestion is recorded."""
    from customers.identities import claim
    from customers.services import identity_confirm

    IdentityFactory(customer=people.other_customer, kind="phone", value="+48601000111")

    result = identity_confirm(customer=people.other_customer, claim=claim("email", "anna@example.pl"))

    assert result.suggested is True and result.merge is None and result.customer == people.other_customer
    assert MergeSuggestion.objects.filter(customer__in=[people.customer, people.other_customer]).exists()
    assert Identity.objects.get(kind="email", value="anna@example.pl").customer_id == people.customer.pk


# --- replies emailed to visitors who left --------------------------------------------------------


def test_a_reply_to_a_visitor_who_left_is_emailed_with_a_link_back(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Do you ship to Norway?", profile={"email": "nora@example.no"},
        page=SITE + "/products/42?ref=x#top")
    ticket = ticket_of(chat, token)

    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket, by=people.agent_a, text="Yes, we ship to Norway.")
        ticket_add_note(ticket=ticket, by=people.agent_a, text="SECRET NOTE")

    [mail] = mails_to(smtp_server, "nora@example.no")
    text = body_of(mail)
    assert "Yes, we ship to Norway." in text and "SECRET" not in text
    assert SITE + "/products/42?ref=x#omnicenter-chat" in text
    event = ticket.entries.get(data__action="webchat_replies_emailed")
    assert event.data["to"] == "nora@example.no" and event.data["count"] == 1 and event.data["state"] == "sent"


def test_replies_of_one_batch_go_out_in_one_email_and_seen_ones_are_left_out(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    """While a batch waits (its task scheduled for later), more replies join it; when the task
    runs, the replies the visitor has read meanwhile are left out, the rest go in one email."""
    token = new_visitor(client, chat)
    visitor = visitor_of(chat, token)
    say(client, chat, token, "m-1", "Question", profile={"email": "nora@example.no"})
    ticket = ticket_of(chat, token)
    identity = services.visitor_identity(visitor)
    cache.add(mailing._pending_key(chat.channel.key, ticket.pk, visitor.id), 1, 600)  # the batch's task is waiting
    with django_capture_on_commit_callbacks(execute=True):
        first = ticket_reply(ticket=ticket, by=people.agent_a, text="First answer")
        second = ticket_reply(ticket=ticket, by=people.agent_a, text="Second answer")
        third = ticket_reply(ticket=ticket, by=people.agent_a, text="Third answer")
    assert smtp_server.messages == []  # they joined the waiting batch
    services.visitor_receipt(visitor=visitor, ids=[str(second.public_id)], status="read")

    with django_capture_on_commit_callbacks(execute=True):
        assert mailing.offline_replies_collect(entry_id=first.pk) is not None

    [mail] = smtp_server.messages
    text = body_of(mail)
    assert "First answer" in text and "Third answer" in text and "Second answer" not in text
    event = ticket.entries.get(data__action="webchat_replies_emailed")
    assert event.data["entries"] == [first.pk, third.pk]
    assert identity is not None
    # A second run of the same batch sends nothing again.
    with django_capture_on_commit_callbacks(execute=True):
        assert mailing.offline_replies_collect(entry_id=third.pk) is None
    assert len(smtp_server.messages) == 1


def test_nothing_is_emailed_when_the_visitor_came_back_meanwhile(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    visitor = visitor_of(chat, token)
    say(client, chat, token, "m-1", "Question", profile={"email": "nora@example.no"})
    ticket = ticket_of(chat, token)
    cache.add(mailing._pending_key(chat.channel.key, ticket.pk, visitor.id), 1, 600)
    with django_capture_on_commit_callbacks(execute=True):
        reply = ticket_reply(ticket=ticket, by=people.agent_a, text="Answer")
    services.visitor_presence_change(visitor=visitor, delta=1)  # the widget is open again
    try:
        assert mailing.offline_replies_collect(entry_id=reply.pk) is None
    finally:
        services.visitor_presence_change(visitor=visitor, delta=-1)
    assert smtp_server.messages == []
    assert not ticket.entries.filter(data__action="webchat_replies_emailed").exists()


def test_a_connected_visitor_gets_no_email(client, chat, people, mail_channel, smtp_server,
                                           django_capture_on_commit_callbacks):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Question", profile={"email": "nora@example.no"})
    # A widget on the HTTP fallback counts as connected while it polls.
    assert client.post(f"/widget/{chat.channel.key}/poll", data=json.dumps({"token": token}),
                       content_type="application/json", HTTP_ORIGIN=SITE).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket_of(chat, token), by=people.agent_a, text="Answer")

    assert smtp_server.messages == []


def test_no_email_without_an_address_or_when_the_channel_turns_it_off(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    silent = new_visitor(client, chat)
    say(client, chat, silent, "m-1", "No email given")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket_of(chat, silent), by=people.agent_a, text="Answer")
    assert smtp_server.messages == []

    configure(chat, email_offline_replies=False)
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Question", profile={"email": "nora@example.no"})
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket_of(chat, token), by=people.agent_a, text="Answer")
    assert smtp_server.messages == []


def test_offline_replies_go_to_the_confirmed_email_rather_than_a_typed_one(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Question", profile={"email": "typo@example.net"})
    request_code(client, chat, token, "real@example.net", django_capture_on_commit_callbacks)
    assert confirm(client, chat, token, "real@example.net", code_from(smtp_server, "real@example.net")).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket_of(chat, token), by=people.agent_a, text="Answer")

    assert len(mails_to(smtp_server, "real@example.net")) == 2  # the code, then the reply
    assert mails_to(smtp_server, "typo@example.net") == []


def test_the_setting_is_validated_and_on_by_default(chat, mail_channel):
    from channels_inbound.webchat.adapter import WebchatSettings

    defaults = WebchatSettings(data={"allowed_origins": [SITE]})
    assert defaults.is_valid(), defaults.errors
    assert defaults.validated_data["email_offline_replies"] is True
    assert mailing.offline_emails_enabled(chat.channel) is True  # a channel saved before the setting existed

    unknown = WebchatSettings(data={"allowed_origins": [SITE], "email_channel": "no-such-key"})
    assert not unknown.is_valid() and "email_channel" in unknown.errors
    chosen = WebchatSettings(data={"allowed_origins": [SITE], "email_channel": mail_channel.key,
                                   "email_offline_replies": False})
    assert chosen.is_valid(), chosen.errors


def test_the_chosen_email_channel_sends(client, chat, people, mail_channel, smtp_server,
                                        django_capture_on_commit_callbacks):
    second = smtp_server.email_channel(people.team_a, name="Chat mail", address="chat@shop.example.com")
    configure(chat, email_channel=second.key, email_offline_replies=False)
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")
    with django_capture_on_commit_callbacks(execute=True):
        send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "v@example.net"})

    [mail] = smtp_server.messages
    assert mail.message()["From"].addresses[0].addr_spec == "chat@shop.example.com"


# --- the agent's timeline, erasure ---------------------------------------------------------------


def test_the_agent_sees_what_was_emailed_on_the_timeline_and_other_teams_do_not(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Question", profile={"email": "nora@example.no"})
    ticket = ticket_of(chat, token)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=ticket, by=people.agent_a, text="Answer")
        send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "nora@example.no"})
    request_code(client, chat, token, "nora@example.no", django_capture_on_commit_callbacks)
    confirm(client, chat, token, "nora@example.no", code_from(smtp_server, "nora@example.no"))

    client.force_login(people.agent_a)
    html = client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert "the reply is emailed to nora@example.no" in html
    assert "asked for the transcript by email to nora@example.no (unverified address" in html
    assert "confirmed nora@example.no with a one-time code" in html
    client.force_login(people.agent_b)
    assert client.get(f"/app/tickets/{ticket.pk}/").status_code == 404


def test_erasing_the_customer_erases_the_chat_email_events_and_codes(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    from customers.services import customer_erase

    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "Question", profile={"email": "nora@example.no"})
    ticket = ticket_of(chat, token)
    with django_capture_on_commit_callbacks(execute=True):
        send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "nora@example.no"})
    request_code(client, chat, token, "nora@example.no", django_capture_on_commit_callbacks)
    confirm(client, chat, token, "nora@example.no", code_from(smtp_server, "nora@example.no"))
    assert WebchatEmailCode.objects.exists()

    customer_erase(customer=ticket.customer, by=people.admin)

    assert not WebchatEmailCode.objects.exists()
    events = ticket.entries.filter(kind=TimelineEntry.Kind.EVENT, data__action__startswith="webchat_")
    assert events.count() == 2 and "nora" not in json.dumps(list(events.values_list("data", flat=True)))
    client.force_login(people.agent_a)
    assert client.get(f"/app/tickets/{ticket.pk}/").status_code == 200


def test_the_channels_admin_page_lists_the_offline_email_switch_and_its_state(client, chat, people):
    client.force_login(people.admin)
    page = client.get(f"/admin/channels_inbound/channel/{chat.channel.pk}/change/").content.decode()
    row = re.search(r"<tr><td><code>email_offline_replies</code></td><td><code>(\w+)</code></td><td>([^<]*)</td></tr>", page)
    assert row is not None and row.group(1) == "true"  # on by default, though not in the stored JSON
    assert "visitors who have left" in row.group(2)
    assert chat.identity_secret not in page

    configure(chat, email_offline_replies=False)
    page = client.get(f"/admin/channels_inbound/channel/{chat.channel.pk}/change/").content.decode()
    assert "<tr><td><code>email_offline_replies</code></td><td><code>false</code></td>" in page

    client.force_login(people.agent_a)
    assert client.get(f"/admin/channels_inbound/channel/{chat.channel.pk}/change/").status_code == 302


def test_the_agents_chat_panel_says_the_visitor_confirmed_their_email(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "hello")
    ticket = ticket_of(chat, token)
    client.force_login(people.agent_a)
    assert "Anonymous visitor: details they typed are unverified." in client.get(f"/app/tickets/{ticket.pk}/").content.decode()

    request_code(client, chat, token, "zoe@example.net", django_capture_on_commit_callbacks)
    confirm(client, chat, token, "zoe@example.net", code_from(smtp_server, "zoe@example.net"))

    page = client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert "Confirmed zoe@example.net with a one-time code." in page
    assert "Anonymous visitor" not in page and "merge suggestion" not in page


def test_the_address_given_for_the_transcript_also_receives_offline_replies(
    client, chat, people, mail_channel, smtp_server, django_capture_on_commit_callbacks,
):
    token = new_visitor(client, chat)
    say(client, chat, token, "m-1", "No form filled in")
    with django_capture_on_commit_callbacks(execute=True):
        send(client, chat, token, {"type": "transcript", "id": "t-1", "email": "reader@example.net"})
        ticket_reply(ticket=ticket_of(chat, token), by=people.agent_a, text="A later answer")

    assert len(mails_to(smtp_server, "reader@example.net")) == 2
    assert "A later answer" in body_of(mails_to(smtp_server, "reader@example.net")[1])


def test_stale_unused_codes_are_purged_in_batches_and_used_ones_kept(chat):
    from channels_inbound.tasks import purge_webchat_email_codes

    now = timezone.now()
    old = now - timedelta(days=2)
    make = WebchatEmailCode.objects.create
    stale = [make(channel=chat.channel, visitor=f"anon:{n}", email="a@example.net", code_hash="x", expires_at=old)
             for n in range(3)]
    used = make(channel=chat.channel, visitor="anon:u", email="a@example.net", code_hash="x", expires_at=old, used_at=old)
    live = make(channel=chat.channel, visitor="anon:l", email="a@example.net", code_hash="x",
                expires_at=now + timedelta(minutes=5))

    assert mailing.email_codes_purge(batch=2) == 2
    assert purge_webchat_email_codes.delay().get() == 1

    assert set(WebchatEmailCode.objects.values_list("pk", flat=True)) == {used.pk, live.pk}
    assert stale
