"""anymail's inbound and tracking webhooks under /anymail/: the ESPs' real payload shapes, signed or
authenticated exactly as each ESP does it, routed to the email channel by recipient address.

Amazon SES arrives through SNS: anymail checks basic auth and that the SNS headers match the body,
and channels_inbound/email/sns.py checks SNS's own RSA signature, with a certificate served from a
local server standing in for sns.<region>.amazonaws.com.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from channels_inbound.email.sns import string_to_sign
from channels_inbound.models import InboundEvent
from omnicenter import events
from tests.factories import EntryFactory, TicketFactory, make_channel
from tests.tickets.test_services import listen, receive
from tickets.models import Ticket, TimelineEntry

SIGNING_KEY = "key-mailgun-signing-0123456789abcdef"
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
             b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
BASIC = "anymail-user:Anymail-Pass-42"
pytestmark = pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")


def raw_mail(*, to: str = "support@help.example", message_id: str = "first-1@mail.example.pl",
             subject: str = "Where is my order?", body: str = "Order 123 has not arrived.") -> str:
    return "\r\n".join([
        "From: Anna Kowalska <anna@example.pl>", f"To: {to}", f"Subject: {subject}",
        f"Message-ID: <{message_id}>", "Date: Sun, 22 Nov 2026 10:00:00 +0000", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "", body, "",
    ])


@pytest.fixture
def channel(people):
    channel, _ = make_channel(kind="email", name="Support", default_team=people.team_a, settings_data={
        "address": "support@help.example", "aliases": ["Orders@Help.example"],
    })
    return channel


@pytest.fixture
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    return settings


def basic_auth(secret: str = BASIC) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def mailgun_signature(key: str = SIGNING_KEY) -> dict:
    timestamp, token = "1795860000", secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def post_mailgun_inbound(client, mime: str, *, recipient: str = "support@help.example", key: str = SIGNING_KEY,
                         auth: dict | None = None):
    # A route with forward("https://.../anymail/mailgun/inbound_mime/"): Mailgun posts the raw MIME
    # as `body-mime` in a multipart form, with the signature fields beside it.
    form = {"recipient": recipient, "sender": "anna@example.pl", "from": "Anna Kowalska <anna@example.pl>",
            "subject": "Where is my order?", "body-mime": mime, **mailgun_signature(key)}
    return client.post("/anymail/mailgun/inbound_mime/", form, **(auth if auth is not None else basic_auth()))


# --- inbound: Mailgun ---------------------------------------------------------------------------

def test_given_a_signed_mailgun_mime_post_when_received_then_the_mail_lands_on_a_ticket_once(
    people, channel, anymail_settings, client, django_capture_on_commit_callbacks, django_assert_max_num_queries,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_mailgun_inbound(client, raw_mail())

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert (event.channel, event.external_id, event.payload["esp"]) == (channel, "msgid:<first-1@mail.example.pl>", "Mailgun")
    assert event.status == InboundEvent.Status.PROCESSED
    ticket = Ticket.objects.get()
    assert (ticket.customer, ticket.subject, ticket.team) == (people.customer, "Where is my order?", people.team_a)
    assert ticket.entries.get().text.strip() == "Order 123 has not arrived."

    # The repeat costs the channel lookup, the refused insert and the read of the stored event.
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(3):
        again = post_mailgun_inbound(client, raw_mail())

    assert again.status_code == 200
    assert InboundEvent.objects.count() == 1
    assert TimelineEntry.objects.count() == 1


def test_given_a_wrong_mailgun_signature_when_received_then_anymail_answers_400_and_nothing_is_stored(
    channel, anymail_settings, client,
):
    response = post_mailgun_inbound(client, raw_mail(), key="key-someone-else")

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


def test_given_a_mail_to_an_alias_or_a_reply_address_then_it_is_routed_to_that_channel(
    people, channel, anymail_settings, client,
):
    post_mailgun_inbound(client, raw_mail(to="orders@help.example", message_id="alias@x"), recipient="orders@help.example")
    reply_to = "support+t-0123456789abcdef0123456789abcdef@help.example"
    post_mailgun_inbound(client, raw_mail(to=reply_to, message_id="reply@x"), recipient=reply_to)

    assert sorted(InboundEvent.objects.filter(channel=channel).values_list("external_id", flat=True)) == [
        "msgid:<alias@x>", "msgid:<reply@x>"]


def test_given_a_recipient_no_channel_serves_or_an_inactive_channel_then_the_esp_gets_200_and_nothing_is_stored(
    people, channel, anymail_settings, client,
):
    unknown = post_mailgun_inbound(client, raw_mail(to="sales@elsewhere.example"), recipient="sales@elsewhere.example")
    channel.is_active = False
    channel.save(update_fields=["is_active"])
    inactive = post_mailgun_inbound(client, raw_mail(message_id="second@x"))

    assert (unknown.status_code, inactive.status_code) == (200, 200)
    assert not InboundEvent.objects.exists()

    channel.is_active = True
    channel.save(update_fields=["is_active"])
    post_mailgun_inbound(client, raw_mail(message_id="second@x"))
    assert list(InboundEvent.objects.values_list("external_id", flat=True)) == ["msgid:<second@x>"]


def test_given_a_signed_mailgun_fully_parsed_post_with_an_attachment_then_the_mail_lands_with_it(
    people, channel, anymail_settings, client, django_capture_on_commit_callbacks,
):
    """A route with forward("https://.../anymail/mailgun/inbound/"): Mailgun posts the parsed fields,
    the headers as JSON and each attachment as a file; anymail rebuilds the mail from them."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    headers = [["Received", "by luna.mailgun.net with SMTP mgrt 8734663311733"],
               ["From", "Anna Kowalska <anna@example.pl>"], ["To", "support@help.example"],
               ["Subject", "Zwrot towaru"], ["Message-Id", "<mg-parsed-1@mail.example.pl>"],
               ["Date", "Sun, 22 Nov 2026 10:00:00 +0000"], ["Mime-Version", "1.0"],
               ["X-Mailgun-Sflag", "No"], ["X-Mailgun-Sscore", "0.1"]]
    form = {"recipient": "support@help.example", "sender": "anna@example.pl", "from": "Anna Kowalska <anna@example.pl>",
            "subject": "Zwrot towaru", "body-plain": "Proszę o zwrot.\n\n> cytat", "stripped-text": "Proszę o zwrot.",
            "body-html": "<p>Proszę o <b>zwrot</b>.</p>", "message-headers": json.dumps(headers),
            "attachment-count": "1", "content-id-map": "{}",
            "attachment-1": SimpleUploadedFile("paragon.pdf", PDF_BYTES, content_type="application/pdf"),
            **mailgun_signature()}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/mailgun/inbound/", form, **basic_auth())

    assert response.status_code == 200
    entry = Ticket.objects.get(customer=people.customer).entries.get()
    assert (entry.ticket.subject, entry.provider_message_id) == ("Zwrot towaru", "mg-parsed-1@mail.example.pl")
    assert entry.text.startswith("Proszę o zwrot.")
    assert [(a.filename, a.content_type) for a in entry.attachments.all()] == [("paragon.pdf", "application/pdf")]


# --- inbound: Postmark (basic auth) -------------------------------------------------------------

def postmark_inbound(mime: str) -> dict:
    """Postmark's inbound webhook JSON with "Include raw email content in JSON payload" on."""
    return {
        "FromName": "Anna Kowalska", "MessageStream": "inbound", "From": "anna@example.pl",
        "FromFull": {"Email": "anna@example.pl", "Name": "Anna Kowalska", "MailboxHash": ""},
        "To": "support@help.example",
        "ToFull": [{"Email": "support@help.example", "Name": "", "MailboxHash": ""}],
        "Cc": "", "CcFull": [], "Bcc": "", "BccFull": [], "OriginalRecipient": "support@help.example",
        "Subject": "Where is my order?", "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "ReplyTo": "", "MailboxHash": "", "Date": "Sun, 22 Nov 2026 10:00:00 +0000",
        "TextBody": "Order 123 has not arrived.", "HtmlBody": "", "StrippedTextReply": "", "Tag": "",
        "Headers": [{"Name": "Return-Path", "Value": "<anna@example.pl>"},
                    {"Name": "X-Spam-Status", "Value": "No"}],
        "Attachments": [], "RawEmail": mime,
    }


def test_given_a_postmark_inbound_post_with_basic_auth_then_it_is_stored_once_and_becomes_a_ticket(
    people, channel, anymail_settings, client, django_capture_on_commit_callbacks,
):
    body = json.dumps(postmark_inbound(raw_mail(message_id="pm-1@mail.example.pl")))
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/anymail/postmark/inbound/", body, content_type="application/json", **basic_auth())
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/anymail/postmark/inbound/", body, content_type="application/json", **basic_auth())

    assert (first.status_code, again.status_code) == (200, 200)
    event = InboundEvent.objects.get()
    assert (event.external_id, event.payload["esp"]) == ("msgid:<pm-1@mail.example.pl>", "Postmark")
    assert Ticket.objects.get().customer == people.customer


def test_given_a_postmark_inbound_post_without_the_raw_email_then_the_mail_is_rebuilt_with_its_attachment(
    people, channel, anymail_settings, client, django_capture_on_commit_callbacks,
):
    """Postmark's default inbound JSON (raw content off): anymail rebuilds the mail from its parts."""
    payload = postmark_inbound("")
    del payload["RawEmail"]
    payload.update(
        Subject="Reklamacja", TextBody="Ekspres nie grzeje.", HtmlBody="<p>Ekspres nie grzeje.</p>",
        Headers=[*payload["Headers"], {"Name": "Message-ID", "Value": "<pm-parts-1@mail.example.pl>"}],
        Attachments=[{"Name": "zdjęcie.png", "ContentType": "image/png", "ContentLength": len(PNG_BYTES),
                      "ContentID": "", "Content": base64.b64encode(PNG_BYTES).decode()}],
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/postmark/inbound/", json.dumps(payload), content_type="application/json",
                               **basic_auth())

    assert response.status_code == 200
    entry = Ticket.objects.get(customer=people.customer).entries.get()
    assert entry.ticket.subject == "Reklamacja"
    assert entry.text.strip() == "Ekspres nie grzeje."
    assert [(a.filename, a.content_type) for a in entry.attachments.all()] == [("zdjęcie.png", "image/png")]


@pytest.mark.parametrize("auth", [{}, basic_auth("anymail-user:wrong")], ids=["missing", "wrong"])
def test_given_a_postmark_inbound_post_without_the_right_basic_auth_then_anymail_answers_400_and_nothing_is_stored(
    channel, anymail_settings, client, auth,
):
    body = json.dumps(postmark_inbound(raw_mail()))

    response = client.post("/anymail/postmark/inbound/", body, content_type="application/json", **auth)

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


# --- inbound: SendGrid Inbound Parse, "POST the raw, full MIME message" (basic auth) ------------

def sendgrid_inbound(mime: str) -> dict:
    return {
        "email": mime, "to": "support@help.example", "from": "Anna Kowalska <anna@example.pl>",
        "subject": "Where is my order?", "sender_ip": "209.85.220.41", "spam_score": "0.1",
        "envelope": json.dumps({"to": ["support@help.example"], "from": "anna@example.pl"}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "SPF": "pass", "dkim": "{@example.pl : pass}",
    }


def test_given_a_sendgrid_raw_inbound_parse_post_with_basic_auth_then_it_is_stored_once(
    people, channel, anymail_settings, client, django_capture_on_commit_callbacks,
):
    form = sendgrid_inbound(raw_mail(message_id="sg-1@mail.example.pl", body="Zamówienie nie dotarło."))
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/anymail/sendgrid/inbound/", form, **basic_auth())
    again = client.post("/anymail/sendgrid/inbound/", form, **basic_auth())

    assert (first.status_code, again.status_code) == (200, 200)
    event = InboundEvent.objects.get()
    assert (event.external_id, event.payload["esp"]) == ("msgid:<sg-1@mail.example.pl>", "SendGrid")
    assert Ticket.objects.get().entries.get().text.strip() == "Zamówienie nie dotarło."


def test_given_a_sendgrid_inbound_post_without_basic_auth_then_anymail_answers_400_and_nothing_is_stored(
    channel, anymail_settings, client,
):
    response = client.post("/anymail/sendgrid/inbound/", sendgrid_inbound(raw_mail()))

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


# --- tracking -----------------------------------------------------------------------------------

@pytest.fixture
def sent_reply(people, channel):
    ticket = TicketFactory(customer=people.customer, origin_channel=channel)
    anna = people.customer.identities.get(kind="email")
    return EntryFactory(
        ticket=ticket, channel=channel, identity=anna, author_user=people.agent_a,
        direction=TimelineEntry.Direction.OUTBOUND, delivery_status=TimelineEntry.Delivery.SENT,
        provider_message_id="oc.0123456789abcdef@help.example",
        data={"esp_message_id": "883953f4-6105-42a2-a16a-77a8eac79483"},
    )


def mailgun_event(event: str, *, key: str = SIGNING_KEY, **event_data) -> str:
    """Mailgun's JSON webhook (Sending > Webhooks), signed in its "signature" block."""
    return json.dumps({
        "signature": mailgun_signature(key),
        "event-data": {
            "event": event, "timestamp": 1795860000.123, "id": "CPgfbmQMTCKtHW6uIWtuVe",
            "recipient": "anna@example.pl", "recipient-domain": "example.pl", "tags": [], "user-variables": {},
            "envelope": {"transport": "smtp", "sender": "support@help.example", "targets": "anna@example.pl"},
            "message": {"headers": {"to": "anna@example.pl", "message-id": "oc.0123456789abcdef@help.example",
                                    "from": "Support <support@help.example>", "subject": "Re: Where is my order?"},
                        "attachments": [], "size": 2110},
            "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False, "is-test-mode": False},
            **event_data,
        },
    })


def post_mailgun_tracking(client, body: str):
    return client.post("/anymail/mailgun/tracking/", body, content_type="application/json", **basic_auth())


def test_given_mailgun_reports_delivered_then_opened_then_the_reply_moves_to_delivered_then_read(
    sent_reply, anymail_settings, client,
):
    delivered = mailgun_event("delivered", **{"delivery-status": {
        "tls": True, "mx-host": "mx.example.pl", "code": 250, "description": "", "message": "OK",
        "attempt-no": 1, "session-seconds": 0.4}})

    assert post_mailgun_tracking(client, delivered).status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.DELIVERED

    assert post_mailgun_tracking(client, mailgun_event("opened")).status_code == 200
    assert post_mailgun_tracking(client, delivered).status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.READ


def test_given_mailgun_reports_a_permanent_failure_then_the_reply_fails_with_the_servers_answer(
    sent_reply, anymail_settings, client,
):
    failed = mailgun_event("failed", severity="permanent", reason="bounce", **{"delivery-status": {
        "code": 550, "description": "", "attempt-no": 1,
        "message": "5.1.1 The email account that you tried to reach does not exist."}})

    assert post_mailgun_tracking(client, failed).status_code == 200

    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.FAILED
    assert "5.1.1 The email account that you tried to reach does not exist." in sent_reply.delivery_error


def test_given_a_wrongly_signed_mailgun_event_then_anymail_answers_400_and_the_reply_is_unchanged(
    sent_reply, anymail_settings, client,
):
    response = post_mailgun_tracking(client, mailgun_event("delivered", key="key-someone-else"))

    assert response.status_code == 400
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.SENT


def test_given_a_mailgun_event_for_an_unknown_message_or_a_complaint_then_nothing_changes(
    sent_reply, anymail_settings, client,
):
    stranger = json.loads(mailgun_event("delivered"))
    stranger["event-data"]["message"]["headers"]["message-id"] = "someone-else@mailgun.example"

    assert post_mailgun_tracking(client, json.dumps(stranger)).status_code == 200
    assert post_mailgun_tracking(client, mailgun_event("complained")).status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.SENT


def test_given_postmark_reports_delivery_by_its_own_message_id_then_the_reply_is_delivered(
    sent_reply, anymail_settings, client,
):
    body = json.dumps({
        "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Recipient": "anna@example.pl", "Tag": "",
        "DeliveredAt": "2026-11-22T16:33:54.9070259Z", "Details": "smtp;250 2.0.0 OK", "Metadata": {},
    })

    unauthenticated = client.post("/anymail/postmark/tracking/", body, content_type="application/json")
    sent_reply.refresh_from_db()
    assert (unauthenticated.status_code, sent_reply.delivery_status) == (400, TimelineEntry.Delivery.SENT)

    response = client.post("/anymail/postmark/tracking/", body, content_type="application/json", **basic_auth())

    assert response.status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.DELIVERED


def test_given_a_postmark_hard_bounce_then_the_reply_fails_with_its_description(sent_reply, anymail_settings, client):
    body = json.dumps({
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
        "Name": "Hard bounce", "Tag": "", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "anna@example.pl", "From": "support@help.example", "BouncedAt": "2026-11-22T16:33:54Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Re: Where is my order?",
        "Content": "", "Metadata": {},
    })

    response = client.post("/anymail/postmark/tracking/", body, content_type="application/json", **basic_auth())

    assert response.status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.FAILED
    assert "unknown user, mailbox not found" in sent_reply.delivery_error
    assert "550 5.1.1" in sent_reply.delivery_error


# --- Amazon SES, through SNS (basic auth, SNS headers that match the body, SNS's signature) --------

TOPIC = "arn:aws:sns:eu-west-1:123456789012:omnicenter"


def make_certificate(key, *, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def sns_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def sns_cert(sns_key, http_stub, settings):
    """The signing certificate, served where SNS's SigningCertURL points (allowed for the test)."""
    http_stub.respond(body=make_certificate(sns_key), content_type="application/x-pem-file")
    settings.AMAZON_SNS_CERT_URL_RE = rf"{http_stub.base_url}/[^?#]+\.pem"
    return http_stub.url(f"/SimpleNotificationService-{secrets.token_hex(4)}.pem")


def sns_sign(message: dict, key, version: str = "1") -> dict:
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - what SNS version 1 signs with
    signature = key.sign(string_to_sign(message).encode(), padding.PKCS1v15(), algorithm)
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def sns_body(ses_event: dict, *, cert_url: str, key, version: str = "1") -> dict:
    return sns_sign({
        "Type": "Notification", "MessageId": secrets.token_hex(8), "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Receipt Notification", "Message": json.dumps(ses_event),
        "Timestamp": "2026-11-22T16:40:00.000Z", "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }, key, version)


def sns_post(client, path: str, body: dict, *, auth: dict | None = None, header_type: str | None = None):
    return client.post(path, json.dumps(body), content_type="text/plain; charset=UTF-8",
                       HTTP_X_AMZ_SNS_MESSAGE_TYPE=header_type or body["Type"],
                       HTTP_X_AMZ_SNS_MESSAGE_ID=body["MessageId"], HTTP_X_AMZ_SNS_TOPIC_ARN=body["TopicArn"],
                       **(auth if auth is not None else basic_auth()))


def ses_received(mime: str) -> dict:
    return {
        "notificationType": "Received",
        "mail": {"timestamp": "2026-11-22T16:40:00.000Z", "source": "anna@example.pl",
                 "messageId": "ses-in-1", "destination": ["support@help.example"],
                 "commonHeaders": {"from": ["anna@example.pl"], "to": ["support@help.example"], "subject": "Where is my order?"}},
        "receipt": {"recipients": ["support@help.example"], "action": {"type": "SNS", "encoding": "BASE64",
                    "topicArn": "arn:aws:sns:eu-west-1:123456789012:omnicenter"},
                    "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"}},
        "content": base64.b64encode(mime.encode()).decode(),
    }


@pytest.mark.parametrize("version", ["1", "2"])  # SHA1 and SHA256 signatures
def test_given_an_ses_inbound_notification_when_received_then_the_mail_lands_on_a_ticket_once(
    people, channel, anymail_settings, client, django_capture_on_commit_callbacks, sns_cert, sns_key, version,
):
    with django_capture_on_commit_callbacks(execute=True):
        first = sns_post(client, "/anymail/amazon_ses/inbound/",
                         sns_body(ses_received(raw_mail()), cert_url=sns_cert, key=sns_key, version=version))
        again = sns_post(client, "/anymail/amazon_ses/inbound/",
                         sns_body(ses_received(raw_mail()), cert_url=sns_cert, key=sns_key, version=version))

    assert (first.status_code, again.status_code) == (200, 200)
    assert InboundEvent.objects.count() == 1
    assert Ticket.objects.get().customer == people.customer


def test_given_an_ses_post_without_basic_auth_or_with_mismatched_sns_headers_then_nothing_is_stored(
    channel, anymail_settings, client, sns_cert, sns_key,
):
    body = sns_body(ses_received(raw_mail()), cert_url=sns_cert, key=sns_key)
    unauthenticated = sns_post(client, "/anymail/amazon_ses/inbound/", body, auth={})
    mismatched = sns_post(client, "/anymail/amazon_ses/inbound/", body, header_type="SubscriptionConfirmation")

    assert unauthenticated.status_code == 401  # SNS only sends credentials after a 401
    assert mismatched.status_code == 400
    assert not InboundEvent.objects.exists()


def test_given_a_forged_or_tampered_sns_post_with_the_right_basic_auth_then_it_is_refused_and_nothing_is_stored(
    channel, anymail_settings, client, sns_cert, sns_key, http_stub, settings,
):
    """Knowing the basic-auth secret is not enough: the body must be signed by SNS."""
    good = sns_body(ses_received(raw_mail()), cert_url=sns_cert, key=sns_key)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "tampered message": {**good, "Message": json.dumps(ses_received(raw_mail(body="Send me the money")))},
        "signed with another key": sns_body(ses_received(raw_mail()), cert_url=sns_cert, key=forger),
        "certificate off SNS": sns_sign({**good, "SigningCertURL": "https://evil.example/cert.pem"}, sns_key),
        "unsigned": {key: value for key, value in good.items() if key != "Signature"},
        "unknown signature version": {**good, "SignatureVersion": "3"},
        "garbled signature": {**good, "Signature": "not base64!"},
    }

    answers = {name: sns_post(client, "/anymail/amazon_ses/inbound/", body).status_code for name, body in cases.items()}

    assert answers == dict.fromkeys(cases, 400)
    assert not InboundEvent.objects.exists()
    # The certificate was fetched from the allowed host only, never from the forged URL.
    assert {request.path for request in http_stub.requests} == {sns_cert.removeprefix(http_stub.base_url)}


def test_given_an_expired_certificate_or_a_topic_not_allowed_then_the_sns_post_is_refused(
    channel, anymail_settings, client, sns_key, http_stub, settings, sns_cert,
):
    http_stub.respond(body=make_certificate(sns_key, days=-1), content_type="application/x-pem-file")
    expired = sns_post(client, "/anymail/amazon_ses/inbound/",
                       sns_body(ses_received(raw_mail()), cert_url=http_stub.url("/expired.pem"), key=sns_key))
    settings.AMAZON_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:another-topic"]
    http_stub.respond(body=make_certificate(sns_key), content_type="application/x-pem-file")
    other_topic = sns_post(client, "/anymail/amazon_ses/inbound/",
                           sns_body(ses_received(raw_mail()), cert_url=sns_cert, key=sns_key))

    assert (expired.status_code, other_topic.status_code) == (400, 400)
    assert not InboundEvent.objects.exists()


def test_given_an_ses_bounce_for_our_message_then_the_reply_fails(sent_reply, anymail_settings, client, sns_cert, sns_key):
    sent_reply.data = {"esp_message_id": "0102018f-ses-out-1"}
    sent_reply.save(update_fields=["data"])
    bounce = {
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-11-22T16:41:00.000Z",
                   "feedbackId": "fb-1", "bouncedRecipients": [{"emailAddress": "anna@example.pl", "action": "failed",
                                                                "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"timestamp": "2026-11-22T16:40:00.000Z", "source": "support@help.example", "messageId": "0102018f-ses-out-1",
                 "destination": ["anna@example.pl"], "tags": {}},
    }

    response = sns_post(client, "/anymail/amazon_ses/tracking/", sns_body(bounce, cert_url=sns_cert, key=sns_key))

    assert response.status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.FAILED
    assert "user unknown" in sent_reply.delivery_error


def test_an_esp_channel_shows_the_webhook_urls_to_paste_into_the_esp(people, api_as, anymail_settings):
    response = api_as(people.admin).post("/api/v1/channels/", {
        "kind": "email", "name": "Via Mailgun", "settings": {"address": "help@help.example", "esp": "mailgun"},
    }, format="json")

    assert response.status_code == 201
    urls = response.json()["webhook_urls"]
    assert urls["inbound"].endswith("/anymail/mailgun/inbound/")
    assert urls["tracking"].endswith("/anymail/mailgun/tracking/")


# --- live on the outbound message, complaints ---------------------------------------------------

def test_given_a_tracking_event_then_it_reaches_the_agents_page_live(
    sent_reply, anymail_settings, client, layer, django_capture_on_commit_callbacks,
):
    supervisors = listen(layer, events.SUPERVISORS)

    with django_capture_on_commit_callbacks(execute=True):
        post_mailgun_tracking(client, mailgun_event("delivered"))

    sent_reply.ticket.refresh_from_db()
    assert receive(layer, supervisors) == {"type": "oc.event", "event": {
        "type": "message.status", "ticket": sent_reply.ticket_id, "version": sent_reply.ticket.version}}


def test_given_a_mailgun_complaint_then_the_reply_shows_it_live_and_stays_delivered(
    people, sent_reply, anymail_settings, client, layer, django_capture_on_commit_callbacks,
):
    post_mailgun_tracking(client, mailgun_event("delivered"))
    supervisors = listen(layer, events.SUPERVISORS)

    with django_capture_on_commit_callbacks(execute=True):
        assert post_mailgun_tracking(client, mailgun_event("complained")).status_code == 200
        assert post_mailgun_tracking(client, mailgun_event("complained")).status_code == 200  # kept once

    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.DELIVERED
    assert sent_reply.data["complaint"]["recipient"] == "anna@example.pl"
    assert sent_reply.data["complaint"]["provider"] == "Mailgun"
    assert sent_reply.data["esp_message_id"] == "883953f4-6105-42a2-a16a-77a8eac79483"  # the rest of data kept
    assert receive(layer, supervisors)["event"]["type"] == "message.status"
    assert receive(layer, supervisors, timeout=0.5) is None  # the repeat changed nothing, published nothing
    client.force_login(people.admin)
    page = client.get(f"/app/tickets/{sent_reply.ticket_id}/").content.decode()
    assert 'class="badge complaint"' in page and "Reported as spam" in page
    assert "anna@example.pl marked this message as spam" in page


def test_given_a_complaint_about_an_unknown_message_then_nothing_changes(sent_reply, anymail_settings, client):
    stranger = json.loads(mailgun_event("complained"))
    stranger["event-data"]["message"]["headers"]["message-id"] = "someone-else@mailgun.example"

    assert post_mailgun_tracking(client, json.dumps(stranger)).status_code == 200

    sent_reply.refresh_from_db()
    assert "complaint" not in sent_reply.data


def test_given_a_postmark_spam_complaint_then_the_reply_shows_it(sent_reply, anymail_settings, client):
    body = json.dumps({
        "RecordType": "SpamComplaint", "ID": 4323372036854775807, "Type": "SpamComplaint", "TypeCode": 512,
        "Name": "Spam complaint", "Tag": "", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "ServerID": 23,
        "MessageStream": "outbound", "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details", "Email": "anna@example.pl", "From": "support@help.example",
        "BouncedAt": "2026-11-22T16:33:54Z", "DumpAvailable": True, "Inactive": True, "CanActivate": False,
        "Subject": "Re: Where is my order?", "Content": "", "Metadata": {},
    })

    response = client.post("/anymail/postmark/tracking/", body, content_type="application/json", **basic_auth())

    assert response.status_code == 200
    sent_reply.refresh_from_db()
    assert (sent_reply.data["complaint"]["provider"], sent_reply.delivery_status) == ("Postmark", TimelineEntry.Delivery.SENT)


def test_given_an_ses_complaint_then_the_reply_shows_it(sent_reply, anymail_settings, client, sns_cert, sns_key):
    sent_reply.data = {"esp_message_id": "0102018f-ses-out-1"}
    sent_reply.save(update_fields=["data"])
    complaint = {
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "anna@example.pl"}], "timestamp": "2026-11-22T17:00:00.000Z",
                      "feedbackId": "fb-2", "userAgent": "Yahoo!-Mail-Feedback/2.0", "complaintFeedbackType": "abuse",
                      "arrivalDate": "2026-11-22T16:59:00.000Z"},
        "mail": {"timestamp": "2026-11-22T16:40:00.000Z", "source": "support@help.example", "messageId": "0102018f-ses-out-1",
                 "destination": ["anna@example.pl"], "tags": {}},
    }

    response = sns_post(client, "/anymail/amazon_ses/tracking/", sns_body(complaint, cert_url=sns_cert, key=sns_key))

    assert response.status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.data["complaint"]["recipient"] == "anna@example.pl"


# --- tracking: SendGrid's event webhook, signed (ECDSA) and with basic auth -------------------------

@pytest.fixture(scope="module")
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def sendgrid_settings(anymail_settings, sendgrid_key):
    public = sendgrid_key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    # What SendGrid shows under Mail Settings > Signed Event Webhook: the key's base64, no PEM armour.
    anymail_settings.ANYMAIL = {**anymail_settings.ANYMAIL,
                                "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(public).decode()}
    return anymail_settings


def sendgrid_events(*events_: dict) -> str:
    """SendGrid's event webhook: a JSON array; anymail's SendGrid backend adds `anymail_id` to each mail."""
    return json.dumps([{
        "email": "anna@example.pl", "timestamp": 1795860000, "smtp-id": "<oc.0123456789abcdef@help.example>",
        "sg_event_id": secrets.token_urlsafe(16), "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "anymail_id": "883953f4-6105-42a2-a16a-77a8eac79483", "category": [], **event,
    } for event in events_])


def post_sendgrid_tracking(client, body: str, key, *, auth: dict | None = None, tamper: bool = False):
    timestamp = "1795860000"
    signature = key.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))
    sent = body.replace("anna@", "boris@") if tamper else body
    return client.post("/anymail/sendgrid/tracking/", sent, content_type="application/json",
                       HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=base64.b64encode(signature).decode(),
                       HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
                       **(auth if auth is not None else basic_auth()))


def test_given_signed_sendgrid_events_then_the_reply_is_delivered_then_read_then_a_complaint_shows(
    sent_reply, sendgrid_settings, sendgrid_key, client,
):
    body = sendgrid_events(
        {"event": "processed"},
        {"event": "delivered", "response": "250 2.0.0 OK 1795860000 s3si1.2 - gsmtp", "tls": 1, "ip": "167.89.0.1"},
        {"event": "open", "useragent": "Mozilla/5.0", "ip": "66.249.0.1", "sg_machine_open": False},
    )

    assert post_sendgrid_tracking(client, body, sendgrid_key).status_code == 200
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.READ

    assert post_sendgrid_tracking(client, sendgrid_events({"event": "spamreport"}), sendgrid_key).status_code == 200
    sent_reply.refresh_from_db()
    assert (sent_reply.data["complaint"]["provider"], sent_reply.delivery_status) == ("SendGrid", TimelineEntry.Delivery.READ)


def test_given_a_signed_sendgrid_bounce_then_the_reply_fails_with_the_servers_reason(sent_reply, sendgrid_settings,
                                                                                     sendgrid_key, client):
    body = sendgrid_events({"event": "bounce", "type": "bounce", "status": "5.1.1", "bounce_classification": "Invalid Address",
                            "reason": "550 5.1.1 The email account that you tried to reach does not exist."})

    assert post_sendgrid_tracking(client, body, sendgrid_key).status_code == 200

    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.FAILED
    assert "550 5.1.1 The email account that you tried to reach does not exist." in sent_reply.delivery_error


@pytest.mark.parametrize("case", ["tampered", "another key", "no signature", "no basic auth"])
def test_given_a_sendgrid_event_post_that_is_not_signed_right_then_it_is_refused_and_the_reply_is_unchanged(
    sent_reply, sendgrid_settings, sendgrid_key, client, case,
):
    body = sendgrid_events({"event": "bounce", "type": "bounce", "reason": "550 no"})
    if case == "tampered":
        response = post_sendgrid_tracking(client, body, sendgrid_key, tamper=True)
    elif case == "another key":
        response = post_sendgrid_tracking(client, body, ec.generate_private_key(ec.SECP256R1()))
    elif case == "no signature":
        response = client.post("/anymail/sendgrid/tracking/", body, content_type="application/json", **basic_auth())
    else:
        response = post_sendgrid_tracking(client, body, sendgrid_key, auth={})

    assert response.status_code == 400
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == TimelineEntry.Delivery.SENT


# --- an insecure configuration is an error at start ---------------------------------------------

@pytest.mark.parametrize("secret", ["no-colon-Zx9secret", "user:", ":Zx9secret", "user:Zx9 secret"])
def test_given_a_malformed_webhook_secret_then_no_process_starts(secret, tmp_path):
    result = start_django(tmp_path, ANYMAIL_WEBHOOK_SECRET=secret)

    assert result.returncode != 0
    assert "ImproperlyConfigured: ANYMAIL_WEBHOOK_SECRET must be 'user:password'" in result.stderr
    assert "Zx9" not in result.stderr  # the secret is not echoed


def test_given_a_well_formed_webhook_secret_then_the_process_starts(tmp_path):
    result = start_django(tmp_path, ANYMAIL_WEBHOOK_SECRET="esp:S3cret-For-Webhooks")

    assert (result.returncode, result.stdout.strip()) == (0, "started"), result.stderr


def start_django(tmp_path, *, code: str = "", **env) -> subprocess.CompletedProcess:
    """`django.setup()` in a fresh process (embedded mode, its own var/), as every server and worker starts."""
    root = Path(__file__).resolve().parents[3]
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ANYMAIL_WEBHOOK_SECRET")}
    environ.update(DJANGO_SETTINGS_MODULE="omnicenter.settings", OMNICENTER_VAR_DIR=str(tmp_path), **env)
    script = f"import django\ndjango.setup()\n{code}\nprint('started')"
    return subprocess.run([sys.executable, "-c", script], cwd=root,
                          env=environ, capture_output=True, text=True, timeout=120)


def test_given_no_webhook_secret_then_an_anymail_webhook_view_refuses_to_exist(tmp_path):
    """anymail only warns about a webhook anyone may post to; in a started process that warning is
    an error. (A fresh process: pytest restores the warning filters that django.setup() set.)"""
    result = start_django(tmp_path, code="from anymail.webhooks.postmark import PostmarkInboundWebhookView\n"
                                         "PostmarkInboundWebhookView()")

    assert result.returncode != 0 and "started" not in result.stdout
    assert "AnymailInsecureWebhookWarning: Your Anymail webhooks are insecure" in result.stderr
