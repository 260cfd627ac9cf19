"""Outbound email against a real SMTP server (aiosmtpd, tests/smtpserver.py): what the customer's
mail client receives, and how each SMTP failure maps onto the delivery outcomes."""

from __future__ import annotations

import email.utils

import pytest
from django.core import mail as django_mail

from channels_inbound.base import PermanentSendError, TransientSendError, UnknownOutcome
from channels_inbound.email.outbound import (
    build_email,
    esp_backend_path,
    reply_address,
    send_entry,
    ticket_token_from_address,
)
from channels_inbound.models import Channel
from customers.models import Identity
from omnicenter import crypto
from tests.factories import EntryFactory, TicketFactory
from tests.smtpserver import free_port
from tickets.attachments import attachment_store
from tickets.models import TimelineEntry

PASSWORD = "pw-Very-Secret-42"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def channel(db, smtp_server) -> Channel:
    return Channel.objects.create(
        kind="email", name="Support",
        settings={
            "address": "support@help.example", "aliases": [],
            "smtp_host": smtp_server.host, "smtp_port": smtp_server.port, "smtp_security": "none",
        },
        secrets_encrypted=crypto.encrypt_json({"smtp_password": PASSWORD}),
    )


@pytest.fixture
def anna(people) -> Identity:
    return Identity.objects.get(kind="email", value="anna@example.pl")


@pytest.fixture
def ticket(people, channel, anna):
    """A ticket that started with Anna's email."""
    ticket = TicketFactory(customer=people.customer, subject="Where is my order?", origin_channel=channel)
    EntryFactory(
        ticket=ticket, channel=channel, identity=anna, author_customer=people.customer,
        direction=TimelineEntry.Direction.INBOUND, provider_message_id="abc@customer.example",
        delivery_status=TimelineEntry.Delivery.RECEIVED, text="Where is my order?",
    )
    return ticket


@pytest.fixture
def reply(people, ticket, channel, anna):
    def make(text: str = "It ships today.", **fields) -> TimelineEntry:
        fields.setdefault("author_user", people.agent_a)
        fields.setdefault("delivery_status", TimelineEntry.Delivery.SENDING)
        return EntryFactory(
            ticket=ticket, channel=channel, identity=anna, direction=TimelineEntry.Direction.OUTBOUND, text=text, **fields,
        )

    return make


def received(smtp_server):
    [mail] = smtp_server.messages
    return mail, mail.message()


def body_of(message, subtype: str) -> str:
    """The decoded text as a client shows it; MIME's canonical text form ends lines with CRLF."""
    return message.get_body(preferencelist=(subtype,)).get_content().replace("\r\n", "\n")


# --- what the customer receives -------------------------------------------------------------------


def own_text(body: str) -> str:
    """The message's own words, without the status-link signature every reply ends with."""
    return body.split("\n-- \n", 1)[0]

def test_given_an_agent_reply_when_sent_then_it_arrives_as_a_reply_in_the_customers_thread(
    smtp_server, channel, ticket, reply,
):
    entry = reply("It ships today.\nTracking: PL123")

    result = send_entry(entry)

    mail, message = received(smtp_server)
    assert mail.mail_from == "support@help.example"
    assert mail.rcpt_tos == ["anna@example.pl"]
    assert email.utils.getaddresses([message["From"]]) == [("Support", "support@help.example")]
    assert message["To"] == "anna@example.pl"
    assert message["Reply-To"] == f"support+t-{ticket.public_id.hex}@help.example"
    assert message["Subject"] == f"Re: Where is my order? [#{ticket.number}]"
    assert message["Message-ID"] == f"<{result.provider_message_id}>"
    assert result.provider_message_id.endswith("@help.example")
    assert message["In-Reply-To"] == "<abc@customer.example>"
    assert message["References"] == "<abc@customer.example>"
    assert "Auto-Submitted" not in message


def test_given_a_reply_when_sent_then_text_and_html_alternatives_carry_the_same_words(smtp_server, ticket, reply):
    entry = reply("It ships today.\nTracking: <PL123> & more")

    send_entry(entry)

    _mail, message = received(smtp_server)
    assert message.get_content_type() == "multipart/alternative"
    assert own_text(body_of(message, "plain")).rstrip("\n") == "It ships today.\nTracking: <PL123> & more"
    html = body_of(message, "html")
    assert "It ships today.<br>" in html
    assert "Tracking: &lt;PL123&gt; &amp; more" in html


def test_given_a_reply_with_its_own_html_when_sent_then_that_html_is_the_alternative(smtp_server, reply):
    send_entry(reply("Hello Anna", html="<p>Hello <strong>Anna</strong></p>"))

    _mail, message = received(smtp_server)
    assert own_text(body_of(message, "plain")).strip() == "Hello Anna"
    html = body_of(message, "html").strip()
    assert html.startswith("<p>Hello <strong>Anna</strong></p>")
    assert "/portal/status/" in html


def test_every_reply_ends_with_the_tickets_status_link_in_both_parts(smtp_server, ticket, reply):
    send_entry(reply("It ships today."))

    _mail, message = received(smtp_server)
    footer = body_of(message, "plain").split("\n-- \n", 1)[1]
    assert footer.startswith(f"Follow your request #{ticket.number} online: http://127.0.0.1:8000/portal/status/")
    assert footer.split()[-1] in body_of(message, "html")


def test_given_polish_and_russian_text_when_sent_then_subject_body_and_display_name_round_trip(
    smtp_server, channel, ticket, reply,
):
    ticket.subject = "Zażółć gęślą jaźń — где мой заказ?"
    ticket.save(update_fields=["subject"])
    channel.name = 'Obsługa "Klienta" Łódź'
    channel.save(update_fields=["name"])
    text = "Dzień dobry, paczka wyszła.\nЗдравствуйте, посылка отправлена."

    send_entry(reply(text))

    mail, message = received(smtp_server)
    assert message["Subject"] == f"Re: Zażółć gęślą jaźń — где мой заказ? [#{ticket.number}]"
    assert message["From"].addresses[0].display_name == 'Obsługa "Klienta" Łódź'
    assert message["From"].addresses[0].addr_spec == "support@help.example"
    assert own_text(body_of(message, "plain")).rstrip("\n") == text
    assert "Здравствуйте, посылка отправлена." in body_of(message, "html")
    # 7-bit on the wire (RFC 2047 headers, quoted-printable/base64 bodies): any relay passes it on.
    assert mail.data.isascii()


def test_given_attachments_when_sent_then_each_arrives_with_its_name_and_type(smtp_server, reply):
    entry = reply("The invoice and a note are attached.")
    attachment_store(entry=entry, filename="faktura-łódź.pdf", data=PDF)
    attachment_store(entry=entry, filename="notatka.txt", data="Zamówienie nr 7 — готово".encode())

    send_entry(entry)

    _mail, message = received(smtp_server)
    assert message.get_content_type() == "multipart/mixed"
    parts = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(parts) == {"faktura-łódź.pdf", "notatka.txt"}
    assert parts["faktura-łódź.pdf"].get_content_type() == "application/pdf"
    assert parts["faktura-łódź.pdf"].get_content() == PDF
    assert parts["notatka.txt"].get_content_type() == "text/plain"
    assert parts["notatka.txt"].get_content() == "Zamówienie nr 7 — готово"
    assert own_text(body_of(message, "plain")).strip() == "The invoice and a note are attached."


def test_given_a_subject_already_a_reply_with_its_number_when_sent_then_it_is_not_prefixed_again(
    smtp_server, ticket, reply,
):
    ticket.subject = f"RE: Where is my order? [#{ticket.number}]"
    ticket.save(update_fields=["subject"])

    send_entry(reply())

    _mail, message = received(smtp_server)
    assert message["Subject"] == f"RE: Where is my order? [#{ticket.number}]"


def test_given_a_longer_conversation_when_sent_then_references_list_it_oldest_first_and_reply_to_the_last_mail(
    smtp_server, people, channel, ticket, anna, reply,
):
    first = reply("First answer", provider_message_id="oc.first@help.example", delivery_status="sent")
    EntryFactory(
        ticket=ticket, channel=channel, identity=anna, direction=TimelineEntry.Direction.INBOUND,
        provider_message_id="<second@customer.example>", text="Thanks, but…",
    )
    # Messages on other channels and internal notes have no place in the email thread.
    api_channel = Channel.objects.create(kind="api", name="Shop")
    EntryFactory(ticket=ticket, channel=api_channel, direction="in", provider_message_id="api-1")
    EntryFactory(ticket=ticket, kind=TimelineEntry.Kind.NOTE, direction="", provider_message_id="")

    entry = reply("Second answer")
    send_entry(entry)

    _mail, message = received(smtp_server)
    assert first.provider_message_id in message["References"]
    assert message["References"].split() == [
        "<abc@customer.example>", "<oc.first@help.example>", "<second@customer.example>",
    ]
    assert message["In-Reply-To"] == "<second@customer.example>"


def test_given_more_than_twenty_earlier_mails_when_sent_then_references_keep_the_newest_twenty(
    smtp_server, channel, ticket, anna, reply,
):
    for n in range(25):
        EntryFactory(ticket=ticket, channel=channel, identity=anna, direction="in", provider_message_id=f"m{n}@c.example")

    send_entry(reply())

    _mail, message = received(smtp_server)
    references = message["References"].split()
    assert len(references) == 20
    assert references[-1] == "<m24@c.example>"
    assert "<abc@customer.example>" not in references


def test_given_an_automatic_message_when_sent_then_it_is_marked_auto_submitted(smtp_server, reply):
    send_entry(reply("We got your message.", author_user=None, is_auto_reply=True))

    _mail, message = received(smtp_server)
    assert message["Auto-Submitted"] == "auto-replied"


def test_given_the_same_entry_when_built_twice_then_the_message_id_is_stable_and_unique_per_entry(ticket, reply):
    entry, other = reply("one"), reply("two")

    first, again = build_email(entry).message()["Message-ID"], build_email(entry).message()["Message-ID"]

    assert first == again
    assert first != build_email(other).message()["Message-ID"]


def test_given_a_reply_address_then_its_token_names_the_ticket(channel, ticket):
    address = reply_address(channel, ticket)

    assert address == f"support+t-{ticket.public_id.hex}@help.example"
    assert ticket_token_from_address(f"Support <{address}>") == ticket.public_id.hex
    assert ticket_token_from_address("support@help.example") is None


# --- SMTP AUTH ------------------------------------------------------------------------------------

def test_given_an_smtp_user_when_sent_then_the_server_sees_an_authenticated_session(smtp_server, channel, reply):
    smtp_server.users["support-user"] = PASSWORD
    channel.settings["smtp_user"] = "support-user"
    channel.save(update_fields=["settings"])

    send_entry(reply())

    mail, _message = received(smtp_server)
    assert mail.login == "support-user"


def test_given_no_smtp_user_when_sent_then_no_auth_is_attempted(smtp_server, reply):
    send_entry(reply())

    mail, _message = received(smtp_server)
    assert mail.login is None
    assert smtp_server.auth_attempts == []


def test_given_a_wrong_password_when_sent_then_it_fails_for_good_without_echoing_the_password(
    smtp_server, channel, reply,
):
    smtp_server.users["support-user"] = "another-password"
    channel.settings["smtp_user"] = "support-user"
    channel.save(update_fields=["settings"])

    with pytest.raises(PermanentSendError) as failure:
        send_entry(reply())

    assert "535" in str(failure.value)
    assert PASSWORD not in str(failure.value)
    assert set(smtp_server.auth_attempts) == {"support-user"}  # smtplib tries PLAIN, then LOGIN
    assert smtp_server.messages == []


# --- failures -------------------------------------------------------------------------------------

def test_given_the_recipient_is_refused_with_550_when_sent_then_it_fails_for_good_with_the_servers_reason(
    smtp_server, reply,
):
    smtp_server.refuse("rcpt", "550 5.1.1 <anna@example.pl>: Recipient address rejected: User unknown")

    with pytest.raises(PermanentSendError) as failure:
        send_entry(reply())

    assert "550 5.1.1" in str(failure.value)
    assert "User unknown" in str(failure.value)
    assert smtp_server.messages == []


def test_given_the_sender_is_refused_with_553_when_sent_then_it_fails_for_good(smtp_server, reply):
    smtp_server.refuse("mail", "553 5.7.1 Sender address rejected: not owned by user")

    with pytest.raises(PermanentSendError, match="not owned by user"):
        send_entry(reply())


def test_given_the_message_is_refused_with_554_after_data_when_sent_then_it_fails_for_good(smtp_server, reply):
    smtp_server.refuse("data", "554 5.7.1 Message rejected as spam")

    with pytest.raises(PermanentSendError, match="rejected as spam"):
        send_entry(reply())


def test_given_a_451_greylisting_answer_when_sent_then_it_is_retried_later(smtp_server, reply):
    smtp_server.refuse("rcpt", "451 4.7.1 Greylisted, please try again later")

    with pytest.raises(TransientSendError, match=r"451 4\.7\.1 Greylisted"):
        send_entry(reply())


def test_given_a_452_after_data_when_sent_then_it_is_retried_later(smtp_server, reply):
    smtp_server.refuse("data", "452 4.3.1 Insufficient system storage")

    with pytest.raises(TransientSendError, match="Insufficient system storage"):
        send_entry(reply())


def test_given_a_closed_port_when_sent_then_it_is_retried_later(channel, reply):
    channel.settings["smtp_port"] = free_port()
    channel.save(update_fields=["settings"])

    with pytest.raises(TransientSendError, match="Cannot reach the SMTP server"):
        send_entry(reply())


def test_given_the_server_drops_the_connection_after_taking_the_message_then_the_outcome_is_unknown(
    smtp_server, reply,
):
    smtp_server.drop_after_data()

    with pytest.raises(UnknownOutcome, match="may have been accepted"):
        send_entry(reply())

    # The server did get it: re-sending blindly would have duplicated the mail.
    assert len(smtp_server.messages) == 1


# --- ESPs -----------------------------------------------------------------------------------------

def test_given_an_esp_channel_when_sent_then_anymail_sends_the_same_threaded_message(channel, ticket, reply):
    channel.settings = {"address": "support@help.example", "esp": "test"}
    channel.save(update_fields=["settings"])
    django_mail.outbox = []

    result = send_entry(reply("Through the ESP"))

    [sent] = django_mail.outbox
    assert esp_backend_path("mailgun") == "anymail.backends.mailgun.EmailBackend"
    assert sent.to == ["anna@example.pl"]
    assert sent.reply_to == [f"support+t-{ticket.public_id.hex}@help.example"]
    assert sent.extra_headers["Message-ID"] == f"<{result.provider_message_id}>"
    assert sent.extra_headers["In-Reply-To"] == "<abc@customer.example>"
    assert sent.anymail_status.status == {"sent"}
    # The ESP's own id is kept for its delivery and bounce webhooks.
    assert result.data == {"esp_message_id": str(sent.anymail_status.message_id)}


def test_given_an_esp_name_that_is_not_a_module_name_then_it_fails_for_good(channel, reply):
    channel.settings = {"address": "support@help.example", "esp": "../evil"}
    channel.save(update_fields=["settings"])

    with pytest.raises(PermanentSendError):
        send_entry(reply())


def test_given_an_esp_without_its_credentials_when_sent_then_it_fails_for_good(channel, reply):
    channel.settings = {"address": "support@help.example", "esp": "mailgun"}
    channel.save(update_fields=["settings"])

    with pytest.raises(PermanentSendError, match="MAILGUN_API_KEY"):
        send_entry(reply())
