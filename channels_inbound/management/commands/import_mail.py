"""`manage.py import_mail --channel KEY PATH...`: import .eml files, mbox files and Maildir folders.

Every mail goes through the same spine as polled mail (stored as an InboundEvent unique on its
Message-ID, or the SHA-256 of its bytes, then processed), so a re-run imports nothing twice. Mails
are read one at a time: memory does not grow with the archive.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import mailbox
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from channels_inbound.models import Channel, InboundEvent
from channels_inbound.services import inbound_event_process, inbound_event_store

_headers = BytesHeaderParser(policy=compat32)


def mail_external_id(raw: bytes) -> str:
    """The id an email is deduplicated by: its Message-ID, else the SHA-256 of its bytes."""
    try:
        message_id = (_headers.parsebytes(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]).get("Message-ID") or "")
    except Exception:  # a header block too broken to read still has bytes to hash
        message_id = ""
    message_id = str(message_id).strip().strip("<>").strip()
    if message_id and len(message_id) < 240:
        return "msgid:" + message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def iter_mails(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(where, raw bytes) for every mail under the given paths, one at a time."""
    for path in paths:
        if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in box.iterkeys():
                with box.get_file(key) as handle:
                    yield f"{path}:{key}", handle.read()
        elif path.is_dir():
            for child in sorted(path.rglob("*.eml")):
                yield str(child), child.read_bytes()
        elif path.suffix.lower() == ".eml":
            yield str(path), path.read_bytes()
        else:
            box = mailbox.mbox(path, factory=None, create=False)
            for key in box.iterkeys():
                yield f"{path}#{key}", box.get_bytes(key, from_=False)


BATCH = 25


class Command(BaseCommand):
    help = "Import .eml files, mbox files and Maildir folders into an email channel (re-runnable)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True, help="the key of an email channel")
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--quiet-progress", action="store_true", help="no progress bar")

    def handle(self, *args, channel: str, paths: list[Path], quiet_progress: bool, **options):
        target = Channel.objects.filter(key=channel, kind="email").first()
        if target is None:
            raise CommandError(f"No email channel with key {channel!r}.")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"Not found: {', '.join(missing)}")
        counts: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        started = time.monotonic()
        done = 0
        # A batch of mails per transaction: one commit (and fsync) for many mails instead of three
        # per mail; each mail still succeeds or fails alone (its processing has a savepoint).
        for chunk in itertools.batched(iter_mails(paths), BATCH):
            with transaction.atomic():
                for where, raw in chunk:
                    self._import_one(target, where, raw, counts, reasons)
            done += len(chunk)
            if not quiet_progress:
                rate = done / max(time.monotonic() - started, 1e-6)
                sys.stderr.write(f"\r{done} mails read, {counts['imported']} imported ({rate:.0f}/s)")
                sys.stderr.flush()
        if not quiet_progress:
            sys.stderr.write("\n")
        elapsed = time.monotonic() - started
        total = sum(counts.values())
        self.stdout.write(
            f"{total} mails in {elapsed:.1f} s: {counts['imported']} imported, "
            f"{counts['duplicates']} already imported, {counts['skipped']} skipped."
        )
        for reason, number in reasons.most_common():
            self.stdout.write(f"  skipped {number}: {reason}")

    def _import_one(self, target: Channel, where: str, raw: bytes, counts: Counter, reasons: Counter) -> None:
        if len(raw) > settings.ATTACHMENT_MAX_BYTES * 2:
            counts["skipped"] += 1
            reasons[f"larger than {settings.ATTACHMENT_MAX_BYTES * 2} bytes"] += 1
            return
        external_id = mail_external_id(raw)
        if InboundEvent.objects.filter(
            channel=target, external_id=external_id, status=InboundEvent.Status.PROCESSED
        ).exists():
            counts["duplicates"] += 1  # decided on the id alone: no payload built or sent
            return
        event, created = inbound_event_store(
            channel=target, external_id=external_id, enqueue=False,
            payload={"raw_b64": base64.b64encode(raw).decode(), "source": where[-300:]},
        )
        if not created and event.status == InboundEvent.Status.PROCESSED:
            counts["duplicates"] += 1
            return
        outcome = inbound_event_process(event_id=event.pk)
        if outcome == "processed":
            counts["imported"] += 1
        else:
            counts["skipped"] += 1
            event.refresh_from_db(fields=["last_error"])
            reasons[event.last_error.split(": ", 1)[-1][:160] or outcome] += 1
