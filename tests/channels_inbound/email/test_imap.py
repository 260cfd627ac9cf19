"""IMAP polling against a real Dovecot (conftest.py): store before Seen, dedup, resync, caps, lease."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from channels_inbound.email.imap import mailbox_poll, mailbox_test_connection
from channels_inbound.models import Channel, InboundEvent, MailboxState
from omnicenter.crypto import encrypt_json

pytestmark = pytest.mark.xdist_group("dovecot")

WAIT_LIMIT = 30.0  # seconds; a bound on waiting, not an assertion on speed


def mail(n: int, *, message_id: str | None = "", body: str = "", subject: str = "") -> bytes:
    """A realistic plain-text mail with CRLF line ends (as IMAP returns it) and 8-bit UTF-8."""
    headers = [
        "From: Anna Kowalska <anna@example.pl>",
        "To: support@example.test",
        f"Subject: {subject or f'Zamówienie {n}'}",
        "Date: Mon, 02 Nov 2026 10:00:00 +0100",
    ]
    if message_id is not None:
        headers.append(f"Message-ID: {message_id or f'<order-{n}@example.pl>'}")
    headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    text = body or f"Dzień dobry, gdzie jest moje zamówienie nr {n}? Żółć."
    return ("\r\n".join([*headers, "", text, ""])).encode()


def email_channel(account, **settings) -> Channel:
    return Channel.objects.create(
        kind="email", name="Support mail", settings=account.settings(**settings),
        secrets_encrypted=encrypt_json({"imap_password": account.password}),
    )


def stored(channel) -> list[InboundEvent]:
    return list(InboundEvent.objects.filter(channel=channel).order_by("id"))


def raw_of(event: InboundEvent) -> bytes:
    return base64.b64decode(event.payload["raw_b64"])


def test_new_mails_are_stored_in_uid_order_with_raw_bytes_intact_then_flagged_seen(db, imap_account):
    mails = [mail(1), mail(2, message_id=None), mail(3)]
    for raw in mails:
        imap_account.append(raw)
    channel = email_channel(imap_account)

    result = mailbox_poll(channel=channel)

    assert (result.stored, result.duplicates, result.oversized, result.errors) == (3, 0, 0, [])
    events = stored(channel)
    assert [e.payload["uid"] for e in events] == [1, 2, 3]
    assert [raw_of(e) for e in events] == mails
    assert events[0].external_id == "msgid:<order-1@example.pl>"
    assert events[1].external_id.startswith("sha256:")  # no Message-ID: the hash of the raw bytes
    assert {e.payload["folder"] for e in events} == {"INBOX"}
    assert all(e.status == InboundEvent.Status.RECEIVED for e in events)
    assert all("\\Seen" in flags for flags in imap_account.flags().values())
    state = MailboxState.objects.get(channel=channel)
    assert (state.last_uid, state.messages_seen, state.last_error, state.lease_until) == (3, 3, "", None)
    assert state.uidvalidity == events[0].payload["uidvalidity"]
    assert state.last_polled_at is not None


def test_polling_again_stores_nothing_new_and_picks_up_later_mail(db, imap_account):
    imap_account.append(mail(1))
    channel = email_channel(imap_account)
    mailbox_poll(channel=channel)

    again = mailbox_poll(channel=channel)
    imap_account.append(mail(2))
    later = mailbox_poll(channel=channel)

    assert (again.stored, again.duplicates) == (0, 0)
    assert (later.stored, later.duplicates) == (1, 0)
    assert [e.payload["uid"] for e in stored(channel)] == [1, 2]


def test_same_message_twice_under_two_uids_is_stored_once_and_both_are_seen(db, imap_account):
    imap_account.append(mail(1))
    imap_account.append(mail(1, body="The same Message-ID, delivered again."))
    imap_account.append(mail(2, message_id=None))
    imap_account.append(mail(2, message_id=None))
    channel = email_channel(imap_account)

    result = mailbox_poll(channel=channel)

    assert (result.stored, result.duplicates) == (2, 2)
    assert [e.payload["uid"] for e in stored(channel)] == [1, 3]
    assert all("\\Seen" in flags for flags in imap_account.flags().values())
    assert MailboxState.objects.get(channel=channel).last_uid == 4


def test_mail_that_cannot_be_stored_stops_the_run_stays_unseen_and_is_retried(db, imap_account):
    for n in (1, 2, 3):
        imap_account.append(mail(n))
    channel = email_channel(imap_account)
    # A real database error for the second mail only.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE channels_inbound_inboundevent ADD CONSTRAINT test_poison"
            " CHECK (external_id <> 'msgid:<order-2@example.pl>')"
        )

    failed = mailbox_poll(channel=channel)

    assert failed.stored == 1
    assert len(failed.errors) == 1 and "UID 2" in failed.errors[0]
    assert [e.payload["uid"] for e in stored(channel)] == [1]
    flags = imap_account.flags()
    assert "\\Seen" in flags[1]
    assert "\\Seen" not in flags[2] and "\\Seen" not in flags[3]
    state = MailboxState.objects.get(channel=channel)
    assert state.last_uid == 1
    assert "UID 2" in state.last_error
    assert state.lease_until is None

    with connection.cursor() as cursor:
        # Django's foreign keys are deferred; PostgreSQL alters no table with checks still pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE channels_inbound_inboundevent DROP CONSTRAINT test_poison")
    retried = mailbox_poll(channel=channel)

    assert (retried.stored, retried.errors) == (2, [])
    assert [e.payload["uid"] for e in stored(channel)] == [1, 2, 3]
    assert all("\\Seen" in f for f in imap_account.flags().values())
    assert MailboxState.objects.get(channel=channel).last_error == ""


def test_recreated_folder_with_new_uidvalidity_is_resynced_without_storing_twice(db, imap_account):
    folder = "Support Team"  # a space: the folder name must be quoted on the wire
    imap_account.create_folder(f'"{folder}"')
    imap_account.append(mail(1), folder=f'"{folder}"')
    imap_account.append(mail(2), folder=f'"{folder}"')
    channel = email_channel(imap_account, imap_folder=folder)
    assert mailbox_poll(channel=channel).stored == 2
    old_validity = MailboxState.objects.get(channel=channel).uidvalidity

    # The server renumbers: the folder is recreated, a new mail gets UID 1, the old two UIDs 2 and 3.
    imap_account.delete_folder(f'"{folder}"')
    imap_account.create_folder(f'"{folder}"')
    for n in (3, 1, 2):
        imap_account.append(mail(n), folder=f'"{folder}"')
    result = mailbox_poll(channel=channel)

    assert (result.stored, result.duplicates, result.errors) == (1, 2, [])
    events = stored(channel)
    assert [e.external_id for e in events] == [
        "msgid:<order-1@example.pl>", "msgid:<order-2@example.pl>", "msgid:<order-3@example.pl>",
    ]
    state = MailboxState.objects.get(channel=channel, folder=folder)
    assert state.uidvalidity != old_validity
    assert state.uidvalidity == events[2].payload["uidvalidity"]
    assert state.last_uid == 3


def test_stored_uidvalidity_that_no_longer_matches_rescans_from_the_start(db, imap_account):
    for n in (1, 2):
        imap_account.append(mail(n))
    channel = email_channel(imap_account)
    mailbox_poll(channel=channel)
    MailboxState.objects.filter(channel=channel).update(uidvalidity=1, last_uid=99)

    result = mailbox_poll(channel=channel)

    assert (result.stored, result.duplicates) == (0, 2)
    state = MailboxState.objects.get(channel=channel)
    assert state.last_uid == 2
    assert state.uidvalidity == stored(channel)[0].payload["uidvalidity"]


def test_each_run_is_capped_and_the_next_run_goes_on(db, imap_account):
    for n in range(1, 6):
        imap_account.append(mail(n))
    channel = email_channel(imap_account)

    runs = [mailbox_poll(channel=channel, max_messages=2) for _ in range(3)]

    assert [(r.stored, r.more) for r in runs] == [(2, True), (2, True), (1, False)]
    assert [e.payload["uid"] for e in stored(channel)] == [1, 2, 3, 4, 5]
    flags = imap_account.flags()
    assert all("\\Seen" in flags[uid] for uid in range(1, 6))


def test_oversized_mail_is_stored_as_headers_only_and_does_not_block_the_mail_behind_it(db, imap_account):
    big = mail(2, body="x" * 5000, subject="Huge attachment")
    imap_account.append(mail(1))
    imap_account.append(big)
    imap_account.append(mail(3))
    channel = email_channel(imap_account)

    result = mailbox_poll(channel=channel, max_bytes=2000)

    assert (result.stored, result.oversized, result.errors) == (2, 1, [])
    first, oversized, last = stored(channel)
    assert raw_of(first) == mail(1) and raw_of(last) == mail(3)
    assert oversized.external_id == "msgid:<order-2@example.pl>"
    assert oversized.payload["oversized"] is True
    assert oversized.payload["size"] == len(big)
    assert oversized.payload["uid"] == 2
    assert "raw_b64" not in oversized.payload
    headers = base64.b64decode(oversized.payload["headers_b64"])
    assert b"Subject: Huge attachment" in headers
    assert b"xxxx" not in headers
    assert MailboxState.objects.get(channel=channel).last_uid == 3


def test_poll_work_is_a_bounded_number_of_queries_per_message(db, imap_account, django_assert_max_num_queries):
    channel = email_channel(imap_account)
    mailbox_poll(channel=channel)  # the mailbox state exists from now on
    for n in range(1, 6):
        imap_account.append(mail(n))

    # state, lease, refresh, release; per mail: savepoint, insert, update, release savepoint
    with django_assert_max_num_queries(4 + 4 * 5):
        assert mailbox_poll(channel=channel).stored == 5


def test_poll_does_nothing_while_another_holds_the_lease_and_resumes_once_it_expires(db, imap_account):
    imap_account.append(mail(1))
    channel = email_channel(imap_account)
    state = MailboxState.objects.create(channel=channel, folder="INBOX",
                                        lease_until=timezone.now() + timedelta(minutes=5))

    busy = mailbox_poll(channel=channel)

    assert busy.busy and busy.stored == 0
    assert stored(channel) == []
    assert "\\Seen" not in imap_account.flags()[1]

    # The worker holding it died (or beat restarted): its lease runs out.
    MailboxState.objects.filter(pk=state.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    resumed = mailbox_poll(channel=channel)

    assert not resumed.busy and resumed.stored == 1
    assert MailboxState.objects.get(pk=state.pk).lease_until is None


class GatedProxy:
    """A TCP relay to Dovecot that holds the first client until released: a poll paused mid-network."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        self.connected.set()
        self.release.wait(WAIT_LIMIT)
        upstream = socket.create_connection(self.target)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.release.set()
        self.listener.close()


@pytest.mark.django_db(transaction=True)
def test_second_poll_while_the_first_is_talking_to_the_server_does_nothing(imap_account):
    for n in (1, 2, 3):
        imap_account.append(mail(n))
    proxy = GatedProxy((imap_account.server.host, imap_account.server.port))
    channel = email_channel(imap_account, imap_port=proxy.port)
    results = {}

    def first_poll() -> None:
        try:
            results["first"] = mailbox_poll(channel=channel)
        finally:
            connection.close()

    worker = threading.Thread(target=first_poll)
    worker.start()
    try:
        # The first poll holds the lease and is connected, waiting for the server's greeting.
        assert proxy.connected.wait(WAIT_LIMIT)
        results["second"] = mailbox_poll(channel=channel)
    finally:
        proxy.close()
        worker.join(WAIT_LIMIT)

    assert results["second"].busy and results["second"].stored == 0
    assert results["first"].stored == 3 and not results["first"].busy
    assert InboundEvent.objects.filter(channel=channel).count() == 3
    assert MailboxState.objects.get(channel=channel).lease_until is None


def test_wrong_password_is_recorded_as_login_failure_without_the_password(db, imap_account):
    imap_account.append(mail(1))
    channel = Channel.objects.create(
        kind="email", name="Support mail", settings=imap_account.settings(),
        secrets_encrypted=encrypt_json({"imap_password": "Wrong-Pa55word!"}),
    )

    result = mailbox_poll(channel=channel)

    assert result.stored == 0 and len(result.errors) == 1
    state = MailboxState.objects.get(channel=channel)
    assert "Login failed" in state.last_error
    assert imap_account.user in state.last_error
    assert "Wrong-Pa55word!" not in state.last_error
    assert state.lease_until is None
    assert stored(channel) == []


def test_unreachable_server_is_recorded_not_raised(db, imap_account):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        closed_port = placeholder.getsockname()[1]
    channel = email_channel(imap_account, imap_port=closed_port)

    result = mailbox_poll(channel=channel)

    assert len(result.errors) == 1 and "refused" in result.errors[0]
    assert "refused" in MailboxState.objects.get(channel=channel).last_error


def test_connection_test_succeeds_and_says_what_it_found(imap_account):
    imap_account.append(mail(1))

    ok, message = mailbox_test_connection(settings_data=imap_account.settings(), password=imap_account.password)

    assert ok
    assert "INBOX" in message and "1" in message


def test_connection_test_says_exactly_what_failed_without_echoing_secrets(imap_account):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        closed_port = placeholder.getsockname()[1]
    password = imap_account.password

    refused = mailbox_test_connection(settings_data=imap_account.settings(imap_port=closed_port), password=password)
    bad_login = mailbox_test_connection(settings_data=imap_account.settings(), password="Not-The-Pa55word")
    no_folder = mailbox_test_connection(settings_data=imap_account.settings(imap_folder="Archive/2019"),
                                        password=password)
    no_host = mailbox_test_connection(settings_data=imap_account.settings(imap_host=""), password=password)
    # This Dovecot speaks plain IMAP only: no STARTTLS, and no TLS on its port.
    no_starttls = mailbox_test_connection(settings_data=imap_account.settings(imap_security="starttls"),
                                          password=password)
    no_tls = mailbox_test_connection(settings_data=imap_account.settings(imap_security="ssl"), password=password)

    assert refused == (False, f"The IMAP server 127.0.0.1 refused the connection on port {closed_port}.")
    assert bad_login[0] is False and bad_login[1].startswith(f"Login failed for user “{imap_account.user}”")
    assert "Not-The-Pa55word" not in bad_login[1]
    assert no_folder[0] is False
    assert no_folder[1].startswith("The folder “Archive/2019” does not exist or cannot be opened")
    assert password not in no_folder[1]
    assert no_host == (False, "No IMAP server is configured.")
    assert no_starttls[0] is False and "does not offer STARTTLS" in no_starttls[1]
    assert no_tls[0] is False and no_tls[1].startswith("The TLS handshake with 127.0.0.1:")
