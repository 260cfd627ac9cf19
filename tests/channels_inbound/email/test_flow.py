"""Email end to end: a real Dovecot in, the spine, a real SMTP server out, and the answer threads back."""

from __future__ import annotations

import base64
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.core.management import call_command

from channels_inbound.models import InboundEvent
from channels_inbound.services import channel_create
from channels_inbound.tasks import poll_mailbox
from tests.ports import free_port
from tickets.models import Ticket, TimelineEntry
from tickets.portal.links import status_url
from tickets.services import ticket_reply, ticket_set_status

pytestmark = pytest.mark.xdist_group("dovecot")


def mail(*, sender: str, subject: str, body: str, message_id: str, in_reply_to: str = "", extra: str = "") -> bytes:
    headers = [
        f"From: {sender}", "To: support@example.test", f"Subject: {subject}", f"Message-ID: <{message_id}>",
        "Date: Sun, 22 Nov 2026 10:00:00 +0000", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    if extra:
        headers.append(extra)
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def mailbox(people, imap_account, smtp_server):
    channel, _ = channel_create(kind="email", name="Obsługa klienta", default_team=people.team_a, settings_data={
        **imap_account.settings(), "imap_password": imap_account.password,
        "smtp_host": smtp_server.host, "smtp_port": smtp_server.port, "smtp_security": "none",
    })
    return channel


def poll(channel, capture):
    with capture(execute=True):
        return poll_mailbox(channel.pk)


def test_mail_becomes_a_ticket_the_reply_threads_and_the_answer_lands_on_the_same_ticket(
    people, mailbox, imap_account, smtp_server, django_capture_on_commit_callbacks,
):
    first_id = make_msgid(domain="poczta.example")[1:-1]
    imap_account.append(mail(sender="Anna Kowalska <anna@example.pl>", subject="Gdzie jest paczka?",
                             body="Zamówienie 123 nie dotarło.", message_id=first_id))

    assert poll(mailbox, django_capture_on_commit_callbacks)["stored"] == 1
    ticket = Ticket.objects.get()
    assert (ticket.customer, ticket.subject, ticket.team) == (people.customer, "Gdzie jest paczka?", people.team_a)
    assert ticket.entries.get().text.strip() == "Zamówienie 123 nie dotarło."

    with django_capture_on_commit_callbacks(execute=True):
        reply = ticket_reply(ticket=ticket, by=people.agent_a, text="Sprawdzamy, dziękujemy za cierpliwość.")
    reply.refresh_from_db()
    assert reply.delivery_status == TimelineEntry.Delivery.SENT
    sent = smtp_server.messages[-1].message()
    assert sent["In-Reply-To"].strip("<>") == first_id
    assert f"[#{ticket.number}]" in sent["Subject"]
    assert f"+t-{ticket.public_id.hex}@" in sent["Reply-To"]
    assert sent["Message-ID"].strip("<>") == reply.provider_message_id

    imap_account.append(mail(sender="anna@example.pl", subject="Re: Gdzie jest paczka?", body="Dziękuję!",
                             message_id=make_msgid(domain="poczta.example")[1:-1], in_reply_to=reply.provider_message_id))
    poll(mailbox, django_capture_on_commit_callbacks)

    assert Ticket.objects.count() == 1
    assert list(ticket.entries.filter(direction="in").values_list("text", flat=True))[-1].strip() == "Dziękuję!"


def test_a_forged_in_reply_to_from_another_sender_opens_a_new_ticket(
    people, mailbox, imap_account, django_capture_on_commit_callbacks,
):
    first_id = make_msgid(domain="poczta.example")[1:-1]
    imap_account.append(mail(sender="anna@example.pl", subject="Private", body="Secret order", message_id=first_id))
    imap_account.append(mail(sender="boris@example.ru", subject="Re: Private", body="Let me in",
                             message_id=make_msgid()[1:-1], in_reply_to=first_id))

    poll(mailbox, django_capture_on_commit_callbacks)

    annas, boris = Ticket.objects.order_by("pk")
    assert annas.entries.count() == 1
    assert boris.customer == people.other_customer


def test_an_auto_reply_does_not_reopen_a_solved_ticket_and_a_bounce_fails_the_reply(
    people, mailbox, imap_account, smtp_server, django_capture_on_commit_callbacks,
):
    first_id = make_msgid(domain="poczta.example")[1:-1]
    imap_account.append(mail(sender="anna@example.pl", subject="Faktura", body="Proszę o fakturę.", message_id=first_id))
    poll(mailbox, django_capture_on_commit_callbacks)
    ticket = Ticket.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply = ticket_reply(ticket=ticket, by=people.agent_a, text="W załączniku.")
        ticket_set_status(ticket=ticket, status="solved", by=people.agent_a)
    reply.refresh_from_db()

    imap_account.append(mail(sender="anna@example.pl", subject="Odpowiedź automatyczna: Faktura", body="Jestem na urlopie.",
                             message_id=make_msgid()[1:-1], in_reply_to=reply.provider_message_id,
                             extra="Auto-Submitted: auto-replied"))
    bounce = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.pl>\r\nTo: support@example.test\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{make_msgid()[1:-1]}>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.pl\r\n\r\n"
        "Final-Recipient: rfc822; anna@example.pl\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{reply.provider_message_id}>\r\nSubject: Re: Faktura\r\n\r\n--b--\r\n"
    ).encode()
    imap_account.append(bounce)
    poll(mailbox, django_capture_on_commit_callbacks)

    ticket.refresh_from_db()
    reply.refresh_from_db()
    assert ticket.status == Ticket.Status.SOLVED
    assert reply.delivery_status == TimelineEntry.Delivery.FAILED
    assert "User unknown" in reply.delivery_error
    assert Ticket.objects.count() == 1  # the bounce made no ticket


def test_a_plain_text_qmail_bounce_fails_the_reply_too(
    people, mailbox, imap_account, smtp_server, django_capture_on_commit_callbacks,
):
    imap_account.append(mail(sender="anna@example.pl", subject="Faktura", body="Proszę o fakturę.",
                             message_id=make_msgid(domain="poczta.example")[1:-1]))
    poll(mailbox, django_capture_on_commit_callbacks)
    ticket = Ticket.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply = ticket_reply(ticket=ticket, by=people.agent_a, text="W załączniku.")
    reply.refresh_from_db()
    corpus = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
    bounce = (corpus / "60-bounce-qmail-plain.eml").read_bytes().replace(
        b"out-1042.abc@omni.example", reply.provider_message_id.encode())

    imap_account.append(bounce)
    poll(mailbox, django_capture_on_commit_callbacks)

    reply.refresh_from_db()
    assert reply.delivery_status == TimelineEntry.Delivery.FAILED
    assert "User unknown" in reply.delivery_error
    assert Ticket.objects.count() == 1  # the bounce made no ticket


def test_import_mail_imports_the_corpus_once_and_a_rerun_duplicates_nothing(people, django_capture_on_commit_callbacks, capsys):
    from pathlib import Path

    channel, _ = channel_create(kind="email", name="Archive", settings_data={"address": "support@example.test"})
    corpus = Path(__file__).resolve().parents[2] / "fixtures" / "mail"

    call_command("import_mail", "--channel", channel.key, str(corpus), "--quiet-progress", "--workers=1")
    first = capsys.readouterr().out
    entries = TimelineEntry.objects.count()
    call_command("import_mail", "--channel", channel.key, str(corpus), "--quiet-progress", "--workers=1")
    second = capsys.readouterr().out

    total = len(list(corpus.glob("*.eml")))
    assert f"{total} mails in" in first and entries > 0
    assert InboundEvent.objects.filter(channel=channel).count() <= total
    assert TimelineEntry.objects.count() == entries
    assert " 0 imported" in second


def test_an_inline_image_is_shown_from_its_stored_attachment(people, mailbox, imap_account, client, django_capture_on_commit_callbacks):
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
           b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
    import base64

    raw = (
        "From: anna@example.pl\r\nTo: support@example.test\r\nSubject: Zdjęcie\r\nMessage-ID: <img-1@poczta.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
        '--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Uszkodzenie:</p><img src="cid:photo1@x" alt="foto">\r\n'
        '--r\r\nContent-Type: image/png; name="photo.png"\r\nContent-ID: <photo1@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.b64encode(png).decode() + "\r\n--r--\r\n"
    ).encode()
    imap_account.append(raw)
    poll(mailbox, django_capture_on_commit_callbacks)
    ticket = Ticket.objects.get()
    attachment = ticket.entries.get().attachments.get()

    client.force_login(people.agent_a)
    page = client.get(f"/app/tickets/{ticket.pk}/").content.decode()

    assert f'src="/app/attachments/{attachment.public_id}/"' in page


def test_test_connection_checks_the_mailbox_and_the_smtp_server_and_never_echoes_a_password(
    people, imap_account, smtp_server, api_as,
):
    smtp_server.users["support-user"] = "smtp-Secret-77"
    smtp = {"smtp_host": smtp_server.host, "smtp_port": smtp_server.port, "smtp_security": "none",
            "smtp_user": "support-user"}
    imap = {**imap_account.settings(), "imap_password": imap_account.password}
    channels = {
        "good": {**imap, **smtp, "smtp_password": "smtp-Secret-77"},
        "bad imap": {**imap, "imap_password": "wrong-Pa55", **smtp, "smtp_password": "smtp-Secret-77"},
        "bad smtp": {**imap, **smtp, "smtp_password": "wrong-Smtp-66"},
        "smtp down": {**imap, **smtp, "smtp_port": free_port(), "smtp_password": "smtp-Secret-77"},
        "no way out": imap,
        "esp": {"address": "support@example.test", "esp": "postmark"},
    }
    api = api_as(people.admin)

    answers = {}
    for name, settings_data in channels.items():
        channel, _ = channel_create(kind="email", name=name, settings_data=settings_data)
        answers[name] = api.post(f"/api/v1/channels/{channel.key}/test/").json()

    assert {name: answer["ok"] for name, answer in answers.items()} == {
        "good": True, "bad imap": False, "bad smtp": False, "smtp down": False, "no way out": False, "esp": True}
    folder = "Incoming: Connected; the folder “INBOX” holds 0 messages."
    assert answers["good"]["message"] == (
        f"{folder} Outgoing: Connected to {smtp_server.host}:{smtp_server.port} and logged in.")
    assert answers["bad imap"]["message"].startswith("Incoming: Login failed for user")
    assert answers["bad smtp"]["message"].startswith(f"{folder} Outgoing: SMTP authentication failed: 535")
    assert "Outgoing: Cannot reach the SMTP server" in answers["smtp down"]["message"]
    assert answers["no way out"]["message"].endswith("replies cannot be sent.")
    assert answers["esp"]["message"] == ("Incoming: No mailbox to poll: mail arrives through the ESP's inbound "
                                         "webhook. Outgoing: Replies go out through postmark.")
    everything = " ".join(answer["message"] for answer in answers.values())
    for secret in ("wrong-Pa55", "wrong-Smtp-66", "smtp-Secret-77", imap_account.password):
        assert secret not in everything
    assert smtp_server.messages == []  # nothing was sent
    assert api_as(people.agent_a).post(f"/api/v1/channels/{channel.key}/test/").status_code == 403


def test_the_admins_test_connection_action_says_what_failed(people, imap_account, client):
    channel, _ = channel_create(kind="email", name="Skrzynka", settings_data={
        **imap_account.settings(), "imap_password": "wrong-Pa55"})
    client.force_login(people.admin)

    response = client.post("/admin/channels_inbound/channel/", {
        "action": "test_connection", "_selected_action": [channel.pk]}, follow=True)

    text = response.content.decode()
    assert "Skrzynka: Incoming: Login failed for user" in text
    assert "wrong-Pa55" not in text


def test_a_new_ticket_is_acknowledged_once_in_the_customers_language_and_never_to_an_auto_reply(
    people, mailbox, imap_account, smtp_server, django_capture_on_commit_callbacks,
):
    from channels_inbound.services import channel_update
    from customers.services import customer_update

    channel_update(channel=mailbox, settings_data={**mailbox.settings, "auto_acknowledge": True})
    customer_update(customer=people.customer, language="pl")
    first_id = make_msgid(domain="poczta.example")[1:-1]
    imap_account.append(mail(sender="anna@example.pl", subject="Reklamacja", body="Ekspres nie grzeje.", message_id=first_id))
    imap_account.append(mail(sender="anna@example.pl", subject="Re: Reklamacja", body="Dodam zdjęcie.",
                             message_id=make_msgid()[1:-1], in_reply_to=first_id))
    imap_account.append(mail(sender="boris@example.ru", subject="Автоответ: Hello", body="Я в отпуске.",
                             message_id=make_msgid()[1:-1], extra="Auto-Submitted: auto-replied"))

    poll(mailbox, django_capture_on_commit_callbacks)

    acks = [m.message() for m in smtp_server.messages]
    assert len(acks) == 1  # one for Anna's new ticket; none for her second mail, none to the auto-reply
    ack = acks[0]
    assert ack["To"] == "anna@example.pl"
    assert ack["Auto-Submitted"] == "auto-replied"
    ticket = Ticket.objects.get(customer=people.customer)
    assert f"#{ticket.number}" in ack.get_body(("plain",)).get_content()
    assert "Dziękujemy" in ack.get_body(("plain",)).get_content()
    assert status_url(ticket).rsplit(":", 2)[0] in ack.get_body(("plain",)).get_content()  # the signed status link
    assert f"[#{ticket.number}]" in ack["Subject"]
    assert ticket.first_response_at is None


def test_an_unparseable_mail_is_kept_raw_shown_to_admins_counted_and_blocks_nothing(
    people, mailbox, imap_account, client, django_capture_on_commit_callbacks,
):
    garbage = b"this is not a mail at all\r\n<script>alert(1)</script>\r\n"
    imap_account.append(mail(sender="anna@example.pl", subject="Before", body="First.", message_id="before@poczta.example"))
    imap_account.append(garbage)
    imap_account.append(mail(sender="boris@example.ru", subject="After", body="Third.", message_id="after@poczta.example"))

    result = poll(mailbox, django_capture_on_commit_callbacks)

    assert (result["stored"], result["errors"]) == (3, [])
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["After", "Before"]  # the mail behind it too
    assert set(imap_account.flags()[2]) >= {"\\Seen"}  # stored, so never fetched again
    bad = InboundEvent.objects.get(status=InboundEvent.Status.DEAD)
    assert base64.b64decode(bad.payload["raw_b64"]) == garbage
    assert "unparseable email: no mail headers found" in bad.last_error
    assert client.get("/healthz").json()["inbound"]["dead"] == 1

    client.force_login(people.admin)
    listed = client.get("/admin/channels_inbound/inboundevent/", {"status__exact": "dead"}).text
    shown = client.get(f"/admin/channels_inbound/inboundevent/{bad.pk}/change/").text
    assert "unparseable email" in listed
    assert "this is not a mail at all" in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<script>alert(1)</script>" not in shown
    client.force_login(people.supervisor)
    assert client.get(f"/admin/channels_inbound/inboundevent/{bad.pk}/change/").status_code == 302  # admins only


def test_the_channel_page_has_a_test_connection_button_that_says_what_failed(people, imap_account, client):
    channel, _ = channel_create(kind="email", name="Skrzynka", settings_data={
        **imap_account.settings(), "imap_password": "wrong-Pa55"})
    page = f"/admin/channels_inbound/channel/{channel.pk}/change/"
    button = f"/admin/channels_inbound/channel/{channel.pk}/test-connection/"
    client.force_login(people.admin)

    assert f'action="{button}"' in client.get(page).text
    answer = client.post(button, follow=True)

    assert answer.redirect_chain == [(page, 302)]
    assert "Skrzynka: Incoming: Login failed for user" in answer.text and "wrong-Pa55" not in answer.text
    assert client.get(button).status_code == 405
    client.force_login(people.supervisor)
    assert client.post(button).status_code == 302 and "/admin/login/" in client.post(button)["Location"]


def test_the_channels_own_acknowledgement_text_goes_out_in_the_customers_language_with_nothing_else_evaluated(
    people, mailbox, imap_account, smtp_server, django_capture_on_commit_callbacks,
):
    from channels_inbound.services import channel_update
    from customers.services import customer_update

    polish = "Dzień dobry! Zgłoszenie nr {number} ({subject}). Status: {status_link} — {{ number }} {% now 'Y' %} {other}"
    channel_update(channel=mailbox, settings_data={**mailbox.settings, "auto_acknowledge": True,
                                                   "acknowledgement_templates": {"pl": polish, "ru": ""}})
    customer_update(customer=people.customer, language="pl")
    customer_update(customer=people.other_customer, language="ru")  # an empty Russian text: the built-in one
    imap_account.append(mail(sender="anna@example.pl", subject="Reklamacja {status_link}", body="Ekspres nie grzeje.",
                             message_id=make_msgid()[1:-1]))
    imap_account.append(mail(sender="boris@example.ru", subject="Вопрос", body="Где заказ?", message_id=make_msgid()[1:-1]))
    imap_account.append(mail(sender="boris@example.ru", subject="Автоответ: Вопрос", body="Я в отпуске.",
                             message_id=make_msgid()[1:-1], extra="Auto-Submitted: auto-replied"))

    poll(mailbox, django_capture_on_commit_callbacks)

    acks = {m.message()["To"]: m.message() for m in smtp_server.messages}
    assert len(smtp_server.messages) == 2  # one per new ticket, none to the auto-reply
    anna = Ticket.objects.get(customer=people.customer)
    text = acks["anna@example.pl"].get_body(("plain",)).get_content()
    link = status_url(anna).rsplit(":", 2)[0]  # the signed link (its timestamp part may differ)
    assert text.startswith(f"Dzień dobry! Zgłoszenie nr {anna.number} (Reklamacja {{status_link}}). Status: {link}")
    assert "— {{ number }} {% now 'Y' %} {other}" in text  # sent as written, never evaluated
    assert "Dzień dobry!" in acks["anna@example.pl"].get_body(("html",)).get_content()
    boris = Ticket.objects.get(customer=people.other_customer, subject="Вопрос")
    russian = acks["boris@example.ru"].get_body(("plain",)).get_content()
    assert "Спасибо" in russian and f"#{boris.number}" in russian and "Dzień dobry" not in russian
    assert TimelineEntry.objects.filter(is_auto_reply=True, direction="out").count() == 2
