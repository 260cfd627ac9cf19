"""`manage.py import_mail --channel KEY PATH...`: import .eml files, mbox files and Maildir folders.

Every mail goes through the same spine as polled mail (stored as an InboundEvent unique on its
Message-ID, or the SHA-256 of its bytes, then processed), so a re-run imports nothing twice; mails
are imported in batches (channels_inbound/email/importer.py). Mails are read one at a time and at
most a few batches are held at once: memory does not grow with the archive.
"""

from __future__ import annotations

import itertools
import mailbox
import multiprocessing
import os
import queue
import re
import sys
import time
import traceback
import zlib
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from channels_inbound.email.imap import header_block
from channels_inbound.email.importer import (
    ArchivedMail,
    ImportReport,
    archived_mail,
    mails_import_batch,
    sender_address,
    sender_owners,
)
from channels_inbound.models import Channel, InboundEvent


class Archive:
    """The mails under the given paths, read one at a time, and how many there are (for the
    progress bar). Counting reads only what iterating needs anyway: file names, Maildir listings and
    the table of contents the mbox module builds before its first message."""

    def __init__(self, paths: list[Path]):
        #: (path, the Maildir or mbox or None for .eml files, its keys or the .eml files)
        self.sources: list[tuple[Path, mailbox.Mailbox | None, list]] = []
        for path in paths:
            box: mailbox.Mailbox | None = None
            if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
                box = mailbox.Maildir(path, factory=None, create=False)
            elif path.is_dir():
                self.sources.append((path, None, sorted(path.rglob("*.eml"))))
                continue
            elif path.suffix.lower() == ".eml":
                self.sources.append((path, None, [path]))
                continue
            else:
                box = mailbox.mbox(path, factory=None, create=False)
            self.sources.append((path, box, list(box.iterkeys())))
        self.total = sum(len(items) for _path, _box, items in self.sources)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """(where, raw bytes) for every mail, one at a time."""
        for path, box, items in self.sources:
            for item in items:
                if box is None:
                    yield str(item), item.read_bytes()
                elif isinstance(box, mailbox.Maildir):
                    with box.get_file(item) as handle:
                        yield f"{path}:{item}", handle.read()
                else:
                    yield f"{path}#{item}", unquote_from(box.get_bytes(item, from_=False))


_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def unquote_from(raw: bytes) -> bytes:
    """An mbox mail's body as it was sent: mbox writers prefix body lines that begin with "From "
    with ">" (mboxrd writers also every ">From " with another), and
    Python's mbox reader leaves that in. One ">" is taken off, as mboxrd says; in an older mboxo
    file a line that really began with ">From " loses its ">" (rare, and only a quote mark)."""
    if b">From " not in raw:
        return raw
    cut = len(header_block(raw))
    return raw[:cut] + _QUOTED_FROM.sub(rb"\1", raw[cut:])


def progress_bar(report: ImportReport, expected: int, elapsed: float, width: int = 30) -> str:
    """One line: a bar, the share done, mails done of the archive's, what was imported, the rate."""
    done = min(report.total, expected)
    share = done / expected if expected else 1.0
    filled = round(width * share)
    rate = report.total / max(elapsed, 1e-6)
    return (f"[{'#' * filled}{'-' * (width - filled)}] {share:4.0%} {done}/{expected} mails, "
            f"{report.imported} imported, {report.skipped} skipped ({rate:.0f}/s)")


BATCH = 200
# Batches waiting for a worker before the reader waits for it: enough to keep it busy, few enough
# that memory stays bounded whatever the archive's size.
IN_FLIGHT = 2


class Command(BaseCommand):
    help = "Import .eml files, mbox files and Maildir folders into an email channel (re-runnable)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True, help="the key of an email channel")
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--quiet-progress", action="store_true", help="no progress bar")
        parser.add_argument("--batch", type=int, default=BATCH, help=f"mails per transaction (default {BATCH})")
        parser.add_argument(
            "--workers", type=int, default=None,
            help="processes that parse and store mail (default: the number of CPUs, at most 4, or 1 on SQLite; "
                 "1 = this process)",
        )

    def handle(self, *args, channel: str, paths: list[Path], quiet_progress: bool, batch: int,
               workers: int | None, **options):
        target = Channel.objects.select_related("default_team").filter(key=channel, kind="email").first()
        if target is None:
            raise CommandError(f"No email channel with key {channel!r}.")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"Not found: {', '.join(missing)}")
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        single_writer = connections["default"].vendor == "sqlite"
        if workers is None:
            workers = 1 if single_writer else min(os.cpu_count() or 1, 4)
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        if workers > 1 and single_writer:
            raise CommandError("SQLite writes one transaction at a time: use --workers 1 (the default there).")
        self.progress = not quiet_progress
        self.started = time.monotonic()
        archive = Archive(paths)
        self.expected = archive.total
        report = ImportReport()
        if workers == 1:
            for chunk in itertools.batched(archive, batch):
                mails = [archived_mail(where=where, raw=raw) for where, raw in chunk]
                report.add(mails_import_batch(channel=target, mails=mails))
                self._show(report)
        else:
            self._import_parallel(target, archive, batch, workers, report)
        if self.progress:
            sys.stderr.write("\n")
        elapsed = time.monotonic() - self.started
        self.stdout.write(
            f"{report.total} mails in {elapsed:.1f} s: {report.imported} imported, "
            f"{report.duplicates} already imported, {report.skipped} skipped."
        )
        for reason, number in report.reasons.most_common():
            self.stdout.write(f"  skipped {number}: {reason}")

    def _show(self, report: ImportReport) -> None:
        if self.progress:
            sys.stderr.write("\r" + progress_bar(report, self.expected, time.monotonic() - self.started))
            sys.stderr.flush()

    def _import_parallel(self, target: Channel, archive: Archive, batch: int, workers: int,
                         report: ImportReport) -> None:
        """This process reads the archive and drops what is already stored (one query per batch,
        nothing parsed); each worker process parses and stores the mails of its share of the
        customers, a batch per transaction, in archive order."""
        context = multiprocessing.get_context("fork")
        # Forked before this process opens a connection or starts a thread: the workers share no
        # socket with it and inherit no lock held by another thread.
        connections.close_all()
        results = context.Queue()
        tasks = [context.Queue(maxsize=IN_FLIGHT) for _ in range(workers)]
        processes = [context.Process(target=_worker_main, args=(target.pk, queue, results), daemon=True)
                     for queue in tasks]
        for process in processes:
            process.start()
        buckets: list[list[ArchivedMail]] = [[] for _ in processes]
        submitted = 0

        def collect(*, block: bool) -> None:
            nonlocal submitted
            while submitted and (block or not results.empty()):
                try:
                    outcome = results.get(timeout=1)
                except queue.Empty:
                    if not any(process.is_alive() for process in processes):
                        raise CommandError("A worker process died.") from None
                    continue
                submitted -= 1
                if isinstance(outcome, str):
                    raise CommandError(f"A worker failed:\n{outcome}")
                report.add(outcome)
                self._show(report)

        def submit(index: int) -> None:
            nonlocal submitted
            collect(block=False)
            while True:
                try:
                    tasks[index].put(buckets[index], timeout=1)
                    break
                except queue.Full:
                    collect(block=False)  # a failed worker says so while we wait for room
                    if not processes[index].is_alive():
                        raise CommandError("A worker process died.") from None
            submitted += 1
            buckets[index] = []

        try:
            for chunk in itertools.batched(archive, batch):
                mails = [archived_mail(where=where, raw=raw) for where, raw in chunk]
                done = set(InboundEvent.objects.filter(
                    channel=target, external_id__in=[m.external_id[:255] for m in mails],
                    status=InboundEvent.Status.PROCESSED,
                ).values_list("external_id", flat=True))
                fresh = [mail for mail in mails if mail.external_id[:255] not in done]
                report.duplicates += len(mails) - len(fresh)
                addresses = {id(mail): sender_address(mail.raw) for mail in fresh}
                owners = sender_owners(addresses.values())
                for mail in fresh:
                    # One customer, one worker: its mails keep their archive order. The key must not
                    # change once the import has created a new sender's customer (see sender_owners).
                    address = addresses[id(mail)]
                    key = f"customer:{owners[address]}" if address in owners else f"address:{address}"
                    index = zlib.crc32(key.encode()) % workers
                    buckets[index].append(mail)
                    if len(buckets[index]) >= batch:
                        submit(index)
                self._show(report)
            for index in range(workers):
                if buckets[index]:
                    submit(index)
            for queue_ in tasks:
                queue_.put(None)
            collect(block=True)
        finally:
            for queue_ in tasks:
                queue_.cancel_join_thread()
            for process in processes:
                process.join(timeout=5)
                if process.is_alive():
                    process.terminate()


def _worker_main(channel_id: int, tasks, results) -> None:
    """A worker: import the batches it is given until it gets None; an error ends it and is reported."""
    try:
        channel = Channel.objects.select_related("default_team").get(pk=channel_id)
        while (mails := tasks.get()) is not None:
            results.put(mails_import_batch(channel=channel, mails=mails))
    except BaseException:
        results.put(traceback.format_exc())
    finally:
        connections.close_all()
