"""import_mail in batches: the same spine, re-runnable, a bad mail costs only itself, bounded queries."""

from __future__ import annotations

import base64
import re
import warnings
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_inbound.email.imap import email_external_id
from channels_inbound.email.importer import archived_mail, mails_import_batch, sender_address, sender_owners
from channels_inbound.models import InboundEvent
from channels_inbound.services import channel_create, inbound_event_process, inbound_event_store
from customers.models import Customer, Identity
from omnicenter import events
from tickets.models import Attachment, Ticket, TimelineEntry


def mail(n: int, *, sender: str = "", in_reply_to: int | None = None, subject: str = "", body: str = "",
         attachment: bytes = b"") -> bytes:
    sender = sender or f"customer{n}@example.pl"
    headers = [
        f"From: Klient {n} <{sender}>", "To: support@example.test", f"Subject: {subject or f'Order {n}'}",
        f"Message-ID: <import-{n}@mail.example.pl>", "Date: Sun, 22 Nov 2026 10:00:00 +0000", "MIME-Version: 1.0",
    ]
    if in_reply_to is not None:
        headers += [f"In-Reply-To: <import-{in_reply_to}@mail.example.pl>",
                    f"References: <import-{in_reply_to}@mail.example.pl>"]
    text = body or f"Message number {n}, zażółć gęślą jaźń."
    if not attachment:
        headers += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(headers) + "\r\n\r\n" + text + "\r\n").encode()
    headers.append('Content-Type: multipart/mixed; boundary="b"')
    parts = (
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(attachment).decode() + "--b--\r\n"
    )
    return ("\r\n".join(headers) + "\r\n\r\n" + parts).encode()


def archive(directory: Path, mails: dict[str, bytes]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, raw in mails.items():
        (directory / f"{name}.eml").write_bytes(raw)
    return directory


def run(channel, path: Path, capsys, *options: str) -> str:
    call_command("import_mail", "--channel", channel.key, str(path), "--quiet-progress", "--workers=1", *options)
    return capsys.readouterr().out


@pytest.fixture
def channel(people):
    channel, _ = channel_create(kind="email", name="Archive", default_team=people.team_a,
                                settings_data={"address": "support@example.test", "auto_acknowledge": True})
    return channel


def test_a_reply_threads_into_the_ticket_its_original_opened_earlier_in_the_same_batch(channel, tmp_path, capsys):
    path = archive(tmp_path / "a", {"1": mail(1), "2": mail(2, sender="customer1@example.pl", in_reply_to=1),
                                    "3": mail(3)})

    out = run(channel, path, capsys, "--batch=10")

    assert "3 mails in" in out and "3 imported" in out
    first = TimelineEntry.objects.get(provider_message_id="import-1@mail.example.pl")
    reply = TimelineEntry.objects.get(provider_message_id="import-2@mail.example.pl")
    other = TimelineEntry.objects.get(provider_message_id="import-3@mail.example.pl")
    assert reply.ticket_id == first.ticket_id != other.ticket_id
    assert Ticket.objects.count() == 2


def test_a_new_sender_with_many_mails_in_one_batch_becomes_one_customer(channel, tmp_path, capsys):
    path = archive(tmp_path / "a", {str(n): mail(n, sender="Anna.Nowak@Example.PL") for n in range(1, 6)})

    run(channel, path, capsys, "--batch=10")

    identity = Identity.objects.get(kind="email", value="anna.nowak@example.pl")
    assert Customer.objects.filter(identities=identity).count() == 1
    assert set(TimelineEntry.objects.values_list("author_customer_id", flat=True)) == {identity.customer_id}
    assert TimelineEntry.objects.filter(identity=identity).count() == 5


def test_a_known_sender_keeps_their_customer_and_a_merged_one_goes_to_the_survivor(people, channel, tmp_path, capsys):
    from customers.services import customer_merge

    customer_merge(into=people.customer, other=people.other_customer, by=people.admin)
    path = archive(tmp_path / "a", {"1": mail(1, sender="anna@example.pl"), "2": mail(2, sender="boris@example.ru")})

    run(channel, path, capsys)

    assert set(Ticket.objects.values_list("customer_id", flat=True)) == {people.customer.pk}
    assert Customer.objects.count() == 2  # nobody new


def test_a_rerun_imports_nothing_twice_and_reads_each_batch_with_one_query(channel, tmp_path, capsys):
    path = archive(tmp_path / "a", {str(n): mail(n) for n in range(1, 8)})
    first = run(channel, path, capsys, "--batch=3")
    state = (InboundEvent.objects.count(), TimelineEntry.objects.count(), Ticket.objects.count(), Customer.objects.count())
    mails = [archived_mail(where=str(p), raw=p.read_bytes()) for p in sorted(path.glob("*.eml"))]

    with CaptureQueriesContext(connection) as queries:
        report = mails_import_batch(channel=channel, mails=mails)
    second = run(channel, path, capsys, "--batch=3")

    assert "7 imported" in first
    assert (report.imported, report.duplicates, report.skipped) == (0, 7, 0)
    assert len(queries) == 1  # which of them are stored already: nothing parsed, nothing written
    assert "0 imported, 7 already imported, 0 skipped" in second
    assert state == (7, 7, 7, 2 + 7)  # the fixture's two customers and the seven senders
    assert (InboundEvent.objects.count(), TimelineEntry.objects.count(), Ticket.objects.count(),
            Customer.objects.count()) == state


def test_a_mail_already_polled_or_received_is_a_duplicate_for_the_import(channel, tmp_path, capsys):
    raw = mail(1)
    event, _ = inbound_event_store(channel=channel, external_id=email_external_id(raw), enqueue=False,
                                   payload={"raw_b64": base64.b64encode(raw).decode()})
    inbound_event_process(event_id=event.pk)

    out = run(channel, archive(tmp_path / "a", {"1": raw}), capsys)

    assert "0 imported, 1 already imported" in out
    assert InboundEvent.objects.count() == 1
    assert TimelineEntry.objects.filter(direction=TimelineEntry.Direction.INBOUND).count() == 1


def test_an_unparseable_mail_in_a_batch_is_reported_kept_and_the_others_imported(channel, tmp_path, capsys):
    path = archive(tmp_path / "a", {"1": mail(1), "2": b"this is not a mail at all\r\n", "3": mail(3)})

    out = run(channel, path, capsys, "--batch=10")

    assert "3 mails in" in out and "2 imported" in out and "1 skipped" in out
    assert "skipped 1: unparseable email: no mail headers found" in out
    bad = InboundEvent.objects.get(status=InboundEvent.Status.DEAD)
    assert base64.b64decode(bad.payload["raw_b64"]) == b"this is not a mail at all\r\n"  # kept raw for an admin
    assert "unparseable" in bad.last_error
    assert TimelineEntry.objects.count() == 2


def test_a_mail_whose_processing_fails_costs_only_itself(channel, tmp_path, capsys, settings):
    settings.ATTACHMENT_MAX_BYTES = 3000  # the archive's limit is twice that: the mail is read, its file refused
    path = archive(tmp_path / "a", {"1": mail(1), "2": mail(2, attachment=b"\x00" * 3100), "3": mail(3),
                                    "4": mail(4, sender="customer1@example.pl", in_reply_to=1)})

    out = run(channel, path, capsys, "--batch=10")

    assert "3 imported" in out and "1 skipped" in out
    assert "larger than the limit of 3000 bytes" in out
    failed = InboundEvent.objects.get(external_id="msgid:<import-2@mail.example.pl>")
    assert failed.status == InboundEvent.Status.FAILED and failed.next_attempt_at is not None  # the sweep retries it
    assert InboundEvent.objects.filter(status=InboundEvent.Status.PROCESSED).count() == 3
    assert not TimelineEntry.objects.filter(inbound_event=failed).exists() and not Attachment.objects.exists()
    assert TimelineEntry.objects.get(provider_message_id="import-4@mail.example.pl").ticket_id == (
        TimelineEntry.objects.get(provider_message_id="import-1@mail.example.pl").ticket_id)


def test_the_same_mail_twice_in_one_archive_is_imported_once(channel, tmp_path, capsys):
    path = archive(tmp_path / "a", {"1": mail(1), "1-copy": mail(1), "2": mail(2)})

    out = run(channel, path, capsys, "--batch=10")

    assert "1 imported" not in out and "2 imported, 1 already imported" in out
    assert TimelineEntry.objects.count() == 2


def test_imported_mail_is_history_and_answers_nobody(channel, tmp_path, capsys):
    run(channel, archive(tmp_path / "a", {"1": mail(1), "2": mail(2)}), capsys)

    assert TimelineEntry.objects.filter(direction=TimelineEntry.Direction.OUTBOUND).count() == 0
    assert TimelineEntry.objects.filter(direction=TimelineEntry.Direction.INBOUND).count() == 2


def test_a_batch_publishes_one_live_event_per_audience_after_it_commits(channel, tmp_path, django_capture_on_commit_callbacks):
    mails = [archived_mail(where=str(n), raw=mail(n)) for n in range(1, 6)]

    with django_capture_on_commit_callbacks() as callbacks:
        mails_import_batch(channel=channel, mails=mails)

    assert len(callbacks) == 1  # five new tickets, one audience (the team and the supervisors)
    groups, message = callbacks[0].args
    assert sorted(groups) == sorted(["supervisors", f"team.{channel.default_team_id}"])
    assert message["event"]["type"] == "ticket.created"
    assert message["event"]["ticket"] == Ticket.objects.latest("pk").pk


def test_a_held_event_outside_an_import_is_published_as_before(people, django_capture_on_commit_callbacks):
    ticket = Ticket.objects.create(subject="x", customer=people.customer, team=people.team_a)

    with django_capture_on_commit_callbacks() as callbacks:
        events.publish_ticket_event("ticket.updated", ticket)
        with events.held_ticket_events() as held:
            events.publish_ticket_event("ticket.updated", ticket)

    assert len(callbacks) == 1 and len(held) == 1


def test_the_queries_of_a_batch_grow_by_a_few_per_mail_not_per_lookup(channel):
    def queries(n: int, start: int) -> int:
        mails = [archived_mail(where=str(i), raw=mail(i)) for i in range(start, start + n)]
        with CaptureQueriesContext(connection) as captured:
            report = mails_import_batch(channel=channel, mails=mails)
        assert report.imported == n
        return len(captured)

    ten, twenty = queries(10, 100), queries(20, 200)

    # Per new mail from a new sender: its ticket and its entry; the rest is per batch.
    assert twenty - ten == 10 * 2
    assert ten - 10 * 2 <= 12  # dedup, events, senders (3), lock, entries, thread keys (read, write), savepoint


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_import_what_one_process_imports(people, tmp_path, capsys):
    corpus = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
    extra = archive(tmp_path / "extra", {
        **{str(n): mail(n) for n in range(1, 30)},
        **{f"r{n}": mail(100 + n, sender=f"customer{n}@example.pl", in_reply_to=n) for n in range(1, 30, 3)},
    })
    serial, _ = channel_create(kind="email", name="Serial", settings_data={"address": "support@example.test"})
    parallel, _ = channel_create(kind="email", name="Parallel", settings_data={"address": "help@example.test"})

    out_serial = run(serial, corpus, capsys, "--batch=7") + run(serial, extra, capsys, "--batch=7")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a test process that has threads
        call_command("import_mail", "--channel", parallel.key, str(corpus), str(extra), "--quiet-progress",
                     "--workers=2", "--batch=7")
        out_parallel = capsys.readouterr().out
        call_command("import_mail", "--channel", parallel.key, str(corpus), str(extra), "--quiet-progress",
                     "--workers=2", "--batch=7")
        again = capsys.readouterr().out

    def shape(channel) -> tuple:
        entries = TimelineEntry.objects.filter(channel=channel, direction=TimelineEntry.Direction.INBOUND,
                                               provider_message_id__startswith="import-")
        tickets: dict[int, set[str]] = {}
        for pid, ticket in entries.values_list("provider_message_id", "ticket_id"):
            tickets.setdefault(ticket, set()).add(pid)
        return sorted(sorted(group) for group in tickets.values())

    assert totals(out_serial) == totals(out_parallel)
    assert totals(out_parallel)[0] > 40
    assert totals(again) == (0, totals(out_parallel)[0] + totals(out_parallel)[1], totals(out_parallel)[2])
    assert shape(parallel) == shape(serial)
    assert sorted(InboundEvent.objects.filter(channel=parallel).values_list("status", flat=True)) == sorted(
        InboundEvent.objects.filter(channel=serial).values_list("status", flat=True))


def totals(output: str) -> tuple[int, int, int]:
    """(imported, already imported, skipped), summed over the summaries in `output`."""
    found = re.findall(r"\d+ mails in [\d.]+ s: (\d+) imported, (\d+) already imported, (\d+) skipped", output)
    return tuple(sum(int(row[i]) for row in found) for i in range(3))  # type: ignore[return-value]


def test_replies_to_a_closed_ticket_in_one_batch_share_one_follow_up(people, channel, tmp_path, capsys):
    from tickets.services import ticket_set_status

    run(channel, archive(tmp_path / "a", {"1": mail(1)}), capsys)
    closed = Ticket.objects.get()
    ticket_set_status(ticket=closed, status=Ticket.Status.CLOSED, by=people.admin)
    later = {"2": mail(2, sender="customer1@example.pl", in_reply_to=1),
             "3": mail(3, sender="customer1@example.pl", in_reply_to=1)}

    run(channel, archive(tmp_path / "b", later), capsys, "--batch=10")

    follow_up = Ticket.objects.exclude(pk=closed.pk).get()
    assert follow_up.follow_up_of_id == closed.pk
    assert set(follow_up.entries.filter(kind="message").values_list("provider_message_id", flat=True)) == {
        "import-2@mail.example.pl", "import-3@mail.example.pl"}


def test_workers_are_chosen_by_customer_so_that_a_customers_mails_keep_their_order(people):
    from customers.services import customer_merge
    from tests.factories import IdentityFactory

    IdentityFactory(customer=people.customer, kind="email", value="anna.work@example.pl")
    customer_merge(into=people.customer, other=people.other_customer, by=people.admin)
    folded = (b"From: =?windows-1251?b?zeXk5ev/IMfk8ODi8fLi8+ny5Q==?=\r\n <Anna.Work@Example.PL>\r\n"
              b"To: support@example.test\r\nSubject: x\r\n\r\nbody\r\n")
    only_sender = b"Sender: boris@example.ru\r\nSubject: x\r\n\r\nbody\r\n"

    IdentityFactory(kind="email", value="solo@example.pl")

    addresses = [sender_address(folded), sender_address(only_sender), sender_address(mail(1)),
                 sender_address(b"From: nobody\r\n\r\nbody"), sender_address(mail(2, sender="solo@example.pl"))]
    owners = sender_owners(addresses)

    assert addresses == ["anna.work@example.pl", "boris@example.ru", "customer1@example.pl", "", "solo@example.pl"]
    # Both of Anna's addresses, and Boris's since he was merged into her: one customer, one worker.
    # A customer with one address is placed by that address, before and after the import creates it.
    assert owners == {"anna.work@example.pl": people.customer.pk, "boris@example.ru": people.customer.pk}


def test_an_mbox_a_maildir_and_eml_files_are_imported_together_and_a_rerun_adds_nothing(channel, tmp_path, capsys):
    import mailbox

    # As mboxrd writers store it: a body line "From …" as ">From …", ">From …" as ">>From …".
    first_mail = mail(1, body=">From the mbox: first line starts with From\r\n>>From a quoted line\r\nAnd the end")
    (tmp_path / "export.mbox").write_bytes(
        b"From customer1@example.pl Sun Nov 22 10:00:00 2026\n" + first_mail.replace(b"\r\n", b"\n") + b"\n"
        + b"From customer1@example.pl Sun Nov 22 11:00:00 2026\n"
        + mail(2, sender="customer1@example.pl", in_reply_to=1).replace(b"\r\n", b"\n") + b"\n")
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(mail(3))
    seen = mailbox.MaildirMessage(mail(4, sender="customer3@example.pl", in_reply_to=3))
    seen.set_subdir("cur")
    seen.add_flag("S")
    maildir.add(seen)
    eml = archive(tmp_path / "eml", {"5": mail(5)})

    paths = [str(tmp_path / "export.mbox"), str(tmp_path / "Maildir"), str(eml)]
    call_command("import_mail", "--channel", channel.key, *paths, "--quiet-progress", "--workers=1")
    first = capsys.readouterr().out
    call_command("import_mail", "--channel", channel.key, *paths, "--quiet-progress", "--workers=1")
    again = capsys.readouterr().out

    assert "5 mails in" in first and "5 imported, 0 already imported, 0 skipped" in first
    assert "0 imported, 5 already imported, 0 skipped" in again
    by_id = dict(TimelineEntry.objects.values_list("provider_message_id", "ticket_id"))
    assert by_id["import-2@mail.example.pl"] == by_id["import-1@mail.example.pl"]  # threads inside the mbox
    assert by_id["import-4@mail.example.pl"] == by_id["import-3@mail.example.pl"]  # and inside the Maildir
    assert Ticket.objects.count() == 3
    body = TimelineEntry.objects.get(provider_message_id="import-1@mail.example.pl").text
    # mbox's ">" before body lines that begin with "From " is gone again; a real ">From" keeps one.
    assert body.split("\n")[:3] == ["From the mbox: first line starts with From", ">From a quoted line", "And the end"]
    sources = {e.payload["source"] for e in InboundEvent.objects.all()}
    assert any(s.startswith(str(tmp_path / "export.mbox") + "#") for s in sources)
    assert any(s.startswith(str(tmp_path / "Maildir") + ":") for s in sources)


def test_the_progress_bar_counts_the_archive_and_ends_full(channel, tmp_path, capsys):
    import mailbox

    box = mailbox.mbox(tmp_path / "a.mbox")
    for n in range(1, 8):
        box.add(mail(n))
    box.flush()
    box.close()
    archive(tmp_path / "eml", {"8": mail(8), "9": b"not a mail\r\n"})

    call_command("import_mail", "--channel", channel.key, str(tmp_path / "a.mbox"), str(tmp_path / "eml"),
                 "--workers=1", "--batch=4")
    captured = capsys.readouterr()

    frames = [frame for frame in captured.err.split("\r") if frame.strip()]
    assert [frame.split("] ")[1].split(" mails")[0] for frame in frames] == [" 44% 4/9", " 89% 8/9", "100% 9/9"]
    assert frames[0].startswith("[" + "#" * 13 + "-" * 17 + "]")
    assert frames[-1].strip().startswith("[" + "#" * 30 + "] 100% 9/9 mails, 8 imported, 1 skipped (")
    assert "9 mails in" in captured.out  # the summary stays on stdout


# Each corpus mail's outcome on the spine (its parse is asserted in test_parser.py): "message" (an
# entry on a ticket), "auto-reply" (an entry that is flagged and answered by nobody), "report" (a
# bounce or delivery report: no entry, no ticket), "dead" (kept raw, given up, in the summary).
CORPUS_DEAD = {"21-missing-from.eml", "24-almost-no-headers.eml", "46-garbage.eml"}
CORPUS_REPORTS = {"35-bounce-dsn-rfc822.eml", "36-bounce-postmaster-headers-only.eml", "37-dsn-delayed.eml",
                  "60-bounce-qmail-plain.eml", "61-bounce-exim-plain.eml", "62-bounce-exim-delay-plain.eml"}
CORPUS_AUTO = {"27-auto-submitted.eml", "28-x-autoreply.eml", "29-precedence-bulk.eml", "30-out-of-office-subject.eml",
               "31-automatic-reply-outlook.eml", "32-autoresponse-ru.eml", "33-autoresponse-pl.eml",
               "34-nieobecnosc-iso-8859-2.eml", "48-mdn-read-receipt.eml"}


def test_every_corpus_mail_has_its_outcome_on_the_spine(people, channel, capsys, tmp_path):
    corpus = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
    # Most corpus mails share Anna's Message-ID <m1@example.pl>, which would make them one mail
    # here: each gets its own.
    for path in corpus.glob("*.eml"):
        (tmp_path / path.name).write_bytes(re.sub(rb"(?im)^(Message-ID:\s*)<m1@example\.pl>",
                                                  rb"\1<" + path.stem.encode() + rb"@example.pl>", path.read_bytes()))
    files = sorted(tmp_path.glob("*.eml"))
    existing_customers = Customer.objects.count()

    out = run(channel, tmp_path, capsys, "--batch=7")

    outcomes, senders = {}, set()
    for path in files:
        event = InboundEvent.objects.get(channel=channel, external_id=email_external_id(path.read_bytes())[:255])
        entries = list(TimelineEntry.objects.filter(inbound_event=event))
        if event.status == InboundEvent.Status.DEAD:
            outcomes[path.name] = "dead"
            assert base64.b64decode(event.payload["raw_b64"]) == path.read_bytes()  # kept raw
        elif not entries:
            outcomes[path.name] = "report"
        else:
            [entry] = entries
            outcomes[path.name] = "auto-reply" if entry.is_auto_reply else "message"
            senders.add(entry.identity.value)
    expected = {path.name: "dead" if path.name in CORPUS_DEAD else "report" if path.name in CORPUS_REPORTS
                else "auto-reply" if path.name in CORPUS_AUTO else "message" for path in files}
    assert outcomes == expected
    assert f"{len(files) - len(CORPUS_DEAD)} imported, 0 already imported, {len(CORPUS_DEAD)} skipped" in out
    # Only senders become customers: the 600 addresses in 38-huge-cc.eml's Cc create nobody.
    assert Customer.objects.count() - existing_customers == len(senders - {"anna@example.pl", "boris@example.ru"})
    assert not Identity.objects.filter(value__startswith="person").exists()
    # Template syntax in a mail is stored as text, never evaluated.
    assert TimelineEntry.objects.filter(text__contains="{{ request.user.password }} {% load static %}").exists()


def test_a_mail_over_twice_the_attachment_limit_is_skipped_and_named_in_the_summary(channel, tmp_path, capsys, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    path = archive(tmp_path / "a", {"1": mail(1), "2": mail(2, attachment=b"\x01" * 3000)})

    out = run(channel, path, capsys)

    assert "2 mails in" in out and "1 imported, 0 already imported, 1 skipped" in out
    assert "skipped 1: larger than 2000 bytes" in out
    assert not TimelineEntry.objects.filter(provider_message_id="import-2@mail.example.pl").exists()
