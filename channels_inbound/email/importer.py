"""Importing a mailbox archive (`manage.py import_mail`): the spine, a batch of mails at a time.

Every mail goes the whole way through the spine, as polled mail does: stored as an InboundEvent
unique on (channel, Message-ID or SHA-256 of its bytes), read by the email adapter's parser, its
sender resolved by `customer_resolve`, threaded and appended by `timeline_append_inbound`, a bounce
applied to the message it quotes. What batching changes is the cost around that path:

- One query finds which mails of a batch are already stored, so a re-run decides its duplicates
  without parsing anything.
- Mails are parsed before the transaction opens, and the batch's new events are inserted in one
  statement, already in their final state: until the transaction commits the rows are its own, so
  nobody else can claim them, and a rollback leaves neither the events nor what they produced.
- One transaction per batch (one commit instead of three per mail). If processing any mail fails,
  the batch is rolled back and run again with a savepoint per mail: that mail alone is recorded as
  failed (the sweep retries it, or an admin sees why it was given up) and the others are imported.
- Live events are held and published once per batch and audience (`events.held_ticket_events`),
  and nobody is answered: an archive is history, so no auto-acknowledgement goes out.

With several worker processes, all mails of one customer go to the same worker (by sender address,
or by customer for a customer who answers to several addresses: `sender_owners`), so workers never
wait on each other's customer and ticket locks, and each customer's mails are ingested in archive
order: a reply finds the ticket its earlier mail opened, as in one process.
"""

from __future__ import annotations

import base64
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels_inbound.base import Unprocessable
from channels_inbound.email.adapter import ReadEmail, read_email
from channels_inbound.email.imap import email_external_id, header_block
from channels_inbound.models import InboundEvent
from channels_inbound.services import (
    inbound_event_process,
    inbound_event_record_failure,
    inbound_events_store_claimed,
    message_ingest,
    messages_ingest_together,
)
from customers.identities import InvalidIdentity, normalize_email
from customers.models import Customer, Identity
from omnicenter import events

if TYPE_CHECKING:
    from channels_inbound.email.adapter import EmailAdapter
    from channels_inbound.models import Channel

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import did with the mails it read: the summary `import_mail` prints."""

    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.imported + self.duplicates + self.skipped

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason[:160]] += 1

    def add(self, other: ImportReport) -> None:
        self.imported += other.imported
        self.duplicates += other.duplicates
        self.skipped += other.skipped
        self.reasons.update(other.reasons)


@dataclass
class ArchivedMail:
    where: str
    raw: bytes
    external_id: str
    event: InboundEvent | None = None
    read: ReadEmail | None = None
    error: Exception | None = None


def archived_mail(*, where: str, raw: bytes) -> ArchivedMail:
    """One mail of an archive with its dedup key (the one IMAP and the ESP webhooks use too, so a
    mail already polled or received is a duplicate here)."""
    return ArchivedMail(where=where, raw=raw, external_id=email_external_id(raw))


_FIELD = re.compile(rb"^(from|sender):(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def sender_address(raw: bytes) -> str:
    """The normalized address in From (else Sender), read from the raw header block without parsing
    the mail: the address `customer_resolve` will be asked about, or "" if there is none."""
    fields = {name.lower(): value for name, value in reversed(_FIELD.findall(header_block(raw)[:65536]))}
    for name in (b"from", b"sender"):
        value = fields.get(name)
        if value is None:
            continue
        text = re.sub(r"\r?\n[ \t]", " ", value.decode("utf-8", "surrogateescape"))
        for _display, address in getaddresses([text]):
            try:
                return normalize_email(address)
            except InvalidIdentity:
                continue
    return ""


def sender_owners(addresses: Iterable[str]) -> dict[str, int]:
    """{address: customer} for the addresses whose customer also answers to another address (a
    customer with several, or merged ones), following merges: their mails must share a worker.

    Every other address keeps its own placement: an import creates a new sender's customer with that
    one address, so the answer for an address cannot change while the import runs and each sender's
    mails stay in one worker, in archive order, before and after its customer exists."""
    wanted = {a for a in addresses if a}
    if not wanted:
        return {}
    email = Identity.Kind.EMAIL
    rows = Identity.objects.filter(kind=email, namespace="", value__in=wanted, verified=True).values_list(
        "value", "customer_id", "customer__merged_into_id")
    parents: dict[int, int | None] = {}
    direct: dict[str, int] = {}
    for value, customer_id, merged_into_id in rows:
        direct[value], parents[customer_id] = customer_id, merged_into_id
    if not direct:
        return {}

    def survivor(customer_id: int) -> int:
        while True:
            if customer_id not in parents:
                parents[customer_id] = Customer.objects.filter(pk=customer_id).values_list(
                    "merged_into_id", flat=True).first()
            if not parents[customer_id]:
                return customer_id
            customer_id = parents[customer_id]

    owners = {value: survivor(customer_id) for value, customer_id in direct.items()}
    survivors = set(owners.values())
    addresses_of: Counter[int] = Counter()
    for customer_id, merged_into_id in Identity.objects.filter(
        Q(customer_id__in=survivors) | Q(customer__merged_into_id__in=survivors), kind=email, verified=True,
    ).values_list("customer_id", "customer__merged_into_id"):
        addresses_of[survivor(merged_into_id or customer_id)] += 1
    return {value: owner for value, owner in owners.items() if addresses_of[owner] > 1}


def mails_import_batch(*, channel: Channel, mails: list[ArchivedMail]) -> ImportReport:
    """Import a batch of mails into an email channel (see the module docstring). Re-runnable."""
    from channels_inbound import registry

    adapter = registry.adapter_for("email")
    report = ImportReport()
    limit = settings.ATTACHMENT_MAX_BYTES * 2
    first: dict[str, ArchivedMail] = {}
    repeats: list[ArchivedMail] = []
    for mail in mails:
        if len(mail.raw) > limit:
            report.skip(f"larger than {limit} bytes")
        elif mail.external_id[:255] in first:
            repeats.append(mail)  # the same mail twice in one batch: decided by the first copy below
        else:
            first[mail.external_id[:255]] = mail
    stored = dict(
        InboundEvent.objects.filter(channel=channel, external_id__in=list(first)).values_list("external_id", "status")
    )
    unfinished: list[ArchivedMail] = []
    fresh: list[ArchivedMail] = []
    for external_id, mail in first.items():
        status = stored.get(external_id)
        if status == InboundEvent.Status.PROCESSED:
            report.duplicates += 1  # decided on the id alone: nothing parsed
        elif status is not None:
            unfinished.append(mail)
        else:
            fresh.append(mail)

    for mail in fresh:
        try:
            mail.read = read_email(mail.raw)
        except Unprocessable as exc:
            mail.error = exc
    outcomes = _store_and_ingest(channel, adapter, fresh)
    for mail in unfinished:
        # Stored before (an interrupted run, or a poller) and not processed yet: the one-at-a-time
        # path, whose claim makes sure it is processed once.
        event = InboundEvent.objects.get(channel=channel, external_id=mail.external_id[:255])
        outcomes[mail.external_id[:255]] = _outcome(event.pk, inbound_event_process(event_id=event.pk))
    for mail in [*fresh, *unfinished]:
        outcome = outcomes.get(mail.external_id[:255], "duplicate")
        _count(report, outcome)
    for mail in repeats:
        outcome = outcomes.get(mail.external_id[:255], "duplicate")
        _count(report, "duplicate" if outcome == "imported" else outcome)
    return report


def _count(report: ImportReport, outcome: str) -> None:
    if outcome == "imported":
        report.imported += 1
    elif outcome == "duplicate":
        report.duplicates += 1
    else:
        report.skip(outcome)


def _outcome(event_id: int, result: str) -> str:
    if result == "processed":
        return "imported"
    error = InboundEvent.objects.filter(pk=event_id).values_list("last_error", flat=True).first() or ""
    return error.split(": ", 1)[-1][:160] or result


def _store_and_ingest(channel: Channel, adapter: EmailAdapter, mails: list[ArchivedMail]) -> dict[str, str]:
    """{external id: "imported" or the reason it was not} for the mails stored here; mails another
    writer stored meanwhile are left out (they are duplicates)."""
    if not mails:
        return {}
    with events.held_ticket_events() as held:
        try:
            with transaction.atomic():
                outcomes = _run(channel, adapter, mails, careful=False)
        except Exception:
            # Some mail's processing failed: do the batch again, each mail in its own savepoint.
            logger.info("import batch rolled back, processing its %s mails one by one", len(mails), exc_info=True)
            held.clear()
            with transaction.atomic():
                outcomes = _run(channel, adapter, mails, careful=True)
        events.publish_held(held)
    return outcomes


def _run(channel: Channel, adapter: EmailAdapter, mails: list[ArchivedMail], *, careful: bool) -> dict[str, str]:
    now = timezone.now()
    for mail in mails:
        ok = mail.error is None
        mail.event = InboundEvent(
            channel=channel, external_id=mail.external_id,
            payload={"raw_b64": base64.b64encode(mail.raw).decode("ascii"), "source": mail.where[-300:]},
            headers={}, attempts=1, received_at=now,
            # Parsed already; the rest either succeeds with the whole batch or rolls back with it.
            # With a savepoint per mail, a failure is recorded on the event by the usual service.
            status=InboundEvent.Status.PROCESSED if ok and not careful else InboundEvent.Status.PROCESSING,
            processed_at=now if ok and not careful else None,
        )
    outcomes: dict[str, str] = {}
    inbound_events_store_claimed(events=[mail.event for mail in mails])
    stored = [mail for mail in mails if mail.event.pk is not None]  # else stored meanwhile by a poller
    for mail in stored:
        if mail.error is not None:
            inbound_event_record_failure(event=mail.event, error=mail.error)
            outcomes[mail.event.external_id] = str(mail.error)[:160]
    stored = [mail for mail in stored if mail.error is None]
    if not careful:
        _ingest_together(channel, adapter, stored)
        outcomes.update((mail.event.external_id, "imported") for mail in stored)
        return outcomes
    processed: list[int] = []
    for mail in stored:
        try:
            with transaction.atomic():
                _ingest(channel, adapter, mail)
        except Exception as exc:
            inbound_event_record_failure(event=mail.event, error=exc)
            outcomes[mail.event.external_id] = (str(exc) or exc.__class__.__name__)[:160]
        else:
            processed.append(mail.event.pk)
            outcomes[mail.event.external_id] = "imported"
    if processed:
        InboundEvent.objects.filter(pk__in=processed).update(
            status=InboundEvent.Status.PROCESSED, processed_at=now, next_attempt_at=None, last_error=""
        )
    return outcomes


def _ingest_together(channel: Channel, adapter: EmailAdapter, mails: list[ArchivedMail]) -> None:
    """The spine for a batch in one go (`messages_ingest_together`), in archive order."""
    messages_ingest_together(channel=channel, from_archive=True, items=[
        (message, mail.event) for mail in mails for message in adapter.messages_from(channel, mail.read)])


def _ingest(channel: Channel, adapter: EmailAdapter, mail: ArchivedMail) -> None:
    assert mail.read is not None
    for message in adapter.messages_from(channel, mail.read):
        message_ingest(channel=channel, message=message, event=mail.event, from_archive=True)
