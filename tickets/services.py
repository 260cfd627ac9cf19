"""Every write on tickets and their timelines (DESIGN.md step 7 and the outbound mirror)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import Customer, Identity
from omnicenter import events, rawsql, roles
from omnicenter.errors import Conflict, DomainError, NotAllowed
from tickets.attachments import attachment_store
from tickets.html import html_to_text, sanitize_html
from tickets.models import Tag, Team, Ticket, TicketThread, TimelineEntry

if TYPE_CHECKING:
    from channels_inbound.base import InboundAttachment, NormalizedMessage
    from channels_inbound.models import Channel, InboundEvent
    from omnicenter.models import User

S = Ticket.Status
OPEN_STATUSES = (S.NEW, S.OPEN, S.PENDING)


class TicketClosed(Conflict):
    code = "ticket_closed"
    default_message = gettext_lazy("The ticket is closed.")


class NoReplyChannel(DomainError):
    code = "no_reply_channel"


def _subject_from(message: NormalizedMessage) -> str:
    if message.subject:
        return message.subject[:300]
    text = (message.text or html_to_text(message.html)).strip().splitlines()
    return (text[0] if text else "")[:120]


def _lock(ticket_id: int) -> Ticket:
    return Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)


def _bump(ticket: Ticket, fields: Iterable[str] = ()) -> None:
    # One UPDATE ... RETURNING version, hand-compiled: every message and every change pays it.
    rawsql.update(ticket, ["updated_at", *fields], increment="version")


TICKET_NUMBER_KEY = "ticket:"  # a ticket number quoted by the sender, e.g. "[#1042]" in a subject
TICKET_TOKEN_KEY = "token:"  # noqa: S105 (a key prefix: the unguessable token of a reply address)


def _find_ticket_for(*, channel: Channel, customer: Customer, thread_keys: list[str],
                     batch: InboundBatch | None = None) -> Ticket | None:
    """Thread hints first, then the customer's latest ticket on this channel's conversation.

    Hints are conversation keys recorded on tickets, ticket numbers and reply-address tokens; every
    one of them only finds a ticket of this same customer. The ticket comes back locked; hints that
    match nothing are a new conversation (None).
    """
    if not thread_keys:
        return _latest_ticket_locked(customer_id=customer.pk, channel_id=channel.pk)
    locked = Ticket.objects.select_for_update(no_key=True).filter(customer=customer).order_by("-last_message_at", "-pk")
    numbers = [int(k.removeprefix(TICKET_NUMBER_KEY)) for k in thread_keys
               if k.startswith(TICKET_NUMBER_KEY) and k.removeprefix(TICKET_NUMBER_KEY).isdigit()]
    tokens = [k.removeprefix(TICKET_TOKEN_KEY) for k in thread_keys if k.startswith(TICKET_TOKEN_KEY)]
    tokens = [t for t in tokens if _is_uuid_hex(t)]
    keys = [k for k in thread_keys if not k.startswith((TICKET_NUMBER_KEY, TICKET_TOKEN_KEY))]
    # Exact conversation keys win over a quoted number or token. Two plain queries rather than
    # one join ordered by a CASE: building that one cost more CPU than anything else per message.
    if keys:
        if batch is not None and batch.threads is not None:
            hinted = [ticket_id for key in keys for ticket_id in batch.threads.get(key, {}).values()]
        else:
            hinted = list(TicketThread.objects.filter(channel=channel, key__in=keys).values_list("ticket_id", flat=True))
        if hinted:
            ticket = locked.filter(pk__in=hinted).first()
            if ticket is not None:
                return ticket
    if not numbers and not tokens:
        return None
    return locked.filter(Q(pk__in=numbers) | Q(public_id__in=tokens)).first()


# The three lookups every inbound message makes, in hand-written SQL: compiling them through the ORM
# cost more CPU than running them (docs/performance.md, "What limits the ingest path"). Only model
# table names are formatted in; every value is a query parameter. SQLite (embedded mode) has no row
# locks and no need for them (one writer at a time).
def _row_lock() -> str:
    return " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""


def _latest_ticket_locked(*, customer_id: int, channel_id: int) -> Ticket | None:
    """The customer's latest ticket that came in on this channel, locked (as `_find_ticket_for`)."""
    sql = (
        f"SELECT * FROM {Ticket._meta.db_table} WHERE customer_id = %s AND origin_channel_id = %s "  # noqa: S608
        f"ORDER BY last_message_at DESC, id DESC LIMIT 1{_row_lock()}"
    )
    return next(iter(Ticket.objects.raw(sql, [customer_id, channel_id])), None)


def _customer_lock(customer_id: int) -> None:
    if connection.features.has_select_for_no_key_update:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Customer._meta.db_table} WHERE id = %s{_row_lock()}", [customer_id])  # noqa: S608


def _inbound_entry_with(*, channel_id: int, provider_message_id: str) -> TimelineEntry | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {TimelineEntry._meta.db_table} "  # noqa: S608
            "WHERE channel_id = %s AND direction = %s AND provider_message_id = %s LIMIT 1",
            [channel_id, TimelineEntry.Direction.INBOUND, provider_message_id],
        )
        row = cursor.fetchone()
    return TimelineEntry.objects.get(pk=row[0]) if row else None


def _is_uuid_hex(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def ticket_record_thread_keys(*, ticket: Ticket, channel: Channel, keys: Iterable[str],
                              batch: InboundBatch | None = None) -> None:
    """Remember conversation keys (e.g. the Message-ID of a reply we sent) for this ticket."""
    rows = [
        TicketThread(channel=channel, customer_id=ticket.customer_id, key=key[:500], ticket=ticket)
        for key in dict.fromkeys(keys) if not key.startswith((TICKET_NUMBER_KEY, TICKET_TOKEN_KEY))
    ]
    if batch is not None and batch.threads is not None:
        for row in rows:  # written with the batch's others by InboundBatch.flush_threads
            owners = batch.threads.setdefault(row.key, {})
            if ticket.customer_id not in owners:
                owners[ticket.customer_id] = ticket.pk
                batch.new_threads.add((row.key, ticket.customer_id))
        return
    # One statement for all of them (an email brings its whole References list); a key already
    # recorded keeps the ticket it points at.
    if rows:
        TicketThread.objects.bulk_create(rows, ignore_conflicts=True)


@dataclass
class InboundBatch:
    """What a caller appending many inbound messages in one transaction (a mailbox import) has
    established in bulk, so that each message need not ask again."""

    #: customers this transaction has locked already (all of a batch's, in one ordered statement)
    locked_customers: set[int] = field(default_factory=set)
    #: provider message ids known to have no inbound entry on the channel (one query for the batch);
    #: the unique constraint still stops a concurrent writer
    absent_ids: set[str] = field(default_factory=set)
    #: the channel's conversation keys that the batch's messages carry: key -> {customer id: ticket
    #: id}, read in one query (`threads_for`) and kept up to date by this batch's own writes, so
    #: that threading a message asks no query of its own. The keys the batch records are written
    #: together by `flush_threads`, which the caller runs after the last message.
    threads: dict[str, dict[int, int]] | None = None
    new_threads: set[tuple[str, int]] = field(default_factory=set)

    def threads_for(self, *, channel: Channel, keys: Iterable[str]) -> None:
        self.threads = {}
        rows = TicketThread.objects.filter(channel=channel, key__in=set(keys)).values_list("key", "customer_id", "ticket_id")
        for key, customer_id, ticket_id in rows:
            self.threads.setdefault(key, {})[customer_id] = ticket_id

    def flush_threads(self, *, channel: Channel) -> None:
        assert self.threads is not None
        rows = [TicketThread(channel=channel, customer_id=customer_id, key=key, ticket_id=self.threads[key][customer_id])
                for key, customer_id in sorted(self.new_threads)]
        if rows:
            TicketThread.objects.bulk_create(rows, ignore_conflicts=True)
        self.new_threads.clear()


def timeline_append_inbound(
    *, channel: Channel, customer: Customer, identity: Identity, message: NormalizedMessage,
    event: InboundEvent | None = None, batch: InboundBatch | None = None,
) -> TimelineEntry:
    """Thread an inbound message into a ticket and append it to the timeline. Idempotent on the
    provider message id; the caller holds the transaction."""
    if message.provider_message_id:
        if batch is not None and message.provider_message_id in batch.absent_ids:
            batch.absent_ids.discard(message.provider_message_id)  # a second copy in the batch checks again
        else:
            existing = _inbound_entry_with(channel_id=channel.pk, provider_message_id=message.provider_message_id[:255])
            if existing is not None:
                return existing

    now = timezone.now()
    # Lock order: the customer, then the ticket. Two first messages of one customer arriving at
    # once must not open two tickets, and an absent ticket row cannot be locked.
    if batch is None or customer.pk not in batch.locked_customers:
        _customer_lock(customer.pk)
    ticket = _find_ticket_for(channel=channel, customer=customer, thread_keys=message.thread_keys, batch=batch)
    created = False
    if ticket is not None:
        if ticket.status == S.CLOSED:
            follow_up_of, ticket = ticket, None
        else:
            follow_up_of = None
    else:
        follow_up_of = None
    if ticket is None:
        ticket = Ticket.objects.create(
            subject=_subject_from(message), customer=customer, origin_channel=channel, team=channel.default_team,
            follow_up_of=follow_up_of, last_message_at=now,
        )
        created = True

    entry = TimelineEntry(
        ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND,
        channel=channel, identity=identity, author_customer=customer, inbound_event=event,
        text=message.text or html_to_text(message.html), html=sanitize_html(message.html),
        provider_message_id=message.provider_message_id[:255], delivery_status=TimelineEntry.Delivery.RECEIVED,
        is_auto_reply=message.is_auto_reply,
        data={**message.data, **({"sent_at": message.timestamp.isoformat()} if message.timestamp else {})},
    )
    rawsql.insert(entry)
    _store_attachments(entry, message.attachments)

    if follow_up_of is not None:
        # The conversation goes on in the follow-up: else every later message on the thread would
        # find the closed ticket again and open yet another follow-up.
        moved = [k[:500] for k in message.thread_keys]
        TicketThread.objects.filter(channel=channel, key__in=moved, ticket=follow_up_of).update(ticket=ticket)
        if batch is not None and batch.threads is not None:
            for key in moved:
                for owner, ticket_id in batch.threads.get(key, {}).items():
                    if ticket_id == follow_up_of.pk:
                        batch.threads[key][owner] = ticket.pk
    ticket_record_thread_keys(ticket=ticket, channel=channel, keys=message.thread_keys, batch=batch)

    if created:
        events.publish_ticket_event("ticket.created", ticket)
        return entry
    fields = ["last_message_at"]
    ticket.last_message_at = now
    if ticket.status == S.SOLVED and not message.is_auto_reply:
        ticket.status, ticket.solved_at = S.OPEN, None
        fields += ["status", "solved_at"]
        _event_entry(ticket, by=None, action="reopened", data={"from": S.SOLVED, "to": S.OPEN})
    elif ticket.status == S.PENDING and not message.is_auto_reply:
        ticket.status = S.OPEN
        fields.append("status")
    _bump(ticket, fields)
    events.publish_ticket_event("timeline.appended", ticket)
    return entry


def _store_attachments(entry: TimelineEntry, attachments: Iterable[InboundAttachment]) -> None:
    for attachment in attachments:
        attachment_store(entry=entry, filename=attachment.filename, data=attachment.data, claimed_type=attachment.content_type)


def _event_entry(ticket: Ticket, *, by: User | None, action: str, data: dict) -> TimelineEntry:
    return TimelineEntry.objects.create(
        ticket=ticket, kind=TimelineEntry.Kind.EVENT, author_user=by, data={"action": action, **data}
    )


def _fits(channel: Channel, identity: Identity) -> bool:
    from channels_inbound import registry

    adapter = registry.adapter_for(channel.kind)
    kinds = adapter.identity_kinds if adapter else ()
    return not kinds or identity.kind in kinds


def reply_target(ticket: Ticket, channel: Channel | None = None, identity: Identity | None = None, *,
                 timeline: list[TimelineEntry] | None = None) -> tuple[Channel, Identity]:
    """Where a reply goes: the channel and identity the agent chose (checked: the identity is this
    customer's and fits the channel), else back where the customer last wrote from.

    `timeline`: the ticket's whole timeline, oldest first, with channel and identity loaded (what
    the ticket page shows); the default is then found in it rather than with another query."""
    if identity is not None and identity.customer_id != ticket.customer_id:
        raise NoReplyChannel(_("That identity does not belong to this ticket's customer."))
    if channel is not None and not channel.is_active:
        raise NoReplyChannel(_("That channel is switched off."))
    inbound = ticket.entries.filter(
        direction=TimelineEntry.Direction.INBOUND, channel__is_active=True, identity__customer_id=ticket.customer_id,
    ).select_related("channel", "identity").order_by("-created_at", "-pk")
    if channel is not None and identity is not None:
        if not _fits(channel, identity):
            raise NoReplyChannel(_("That identity cannot be reached on that channel."))
        return channel, identity
    if identity is not None:
        last = inbound.filter(identity=identity).first()
        if last is not None:
            return last.channel, identity
        if ticket.origin_channel is not None and ticket.origin_channel.is_active and _fits(ticket.origin_channel, identity):
            return ticket.origin_channel, identity
        raise NoReplyChannel(_("Choose a channel to reach that identity on."))
    if channel is not None:
        last = inbound.filter(channel=channel).first()
        if last is not None:
            return channel, last.identity
        fitting = next((i for i in ticket.customer.identities.filter(verified=True) if _fits(channel, i)), None)
        if fitting is None:
            raise NoReplyChannel(_("The customer has no identity that can be reached on that channel."))
        return channel, fitting
    if timeline is None:
        last = inbound.first()
    else:
        last = next((e for e in reversed(timeline) if e.direction == TimelineEntry.Direction.INBOUND and e.channel is not None
                     and e.channel.is_active and e.identity is not None and e.identity.customer_id == ticket.customer_id), None)
    if last is not None:
        return last.channel, last.identity
    origin = ticket.origin_channel
    if origin is not None and origin.is_active:
        verified = [i for i in ticket.customer.identities.all() if i.verified] if timeline is not None \
            else ticket.customer.identities.filter(verified=True)
        fitting = next((i for i in verified if _fits(origin, i)), None)
        if fitting is not None:
            return origin, fitting
    raise NoReplyChannel(_("This ticket has no channel to reply on; choose one."))


def _check_reply(channel: Channel, identity: Identity) -> None:
    """The channel may refuse a reply up front (a closed messaging window), before it is queued."""
    from channels_inbound import registry

    adapter = registry.adapter_for(channel.kind)
    if adapter is not None:
        adapter.check_reply(channel, identity)


@transaction.atomic
def ticket_reply(
    *, ticket: Ticket, by: User, text: str, html: str = "", channel: Channel | None = None,
    identity: Identity | None = None, attachments: Iterable[InboundAttachment] = (),
) -> TimelineEntry:
    """Queue a public reply; `deliver_message` sends it after commit."""
    from channels_inbound.delivery import enqueue_delivery

    ticket = _lock(ticket.pk)
    if ticket.status == S.CLOSED:
        raise TicketClosed()
    target_channel, target_identity = reply_target(ticket, channel, identity)
    _check_reply(target_channel, target_identity)
    now = timezone.now()
    entry = TimelineEntry.objects.create(
        ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.OUTBOUND,
        channel=target_channel, identity=target_identity, author_user=by,
        text=text or html_to_text(html), html=sanitize_html(html),
        delivery_status=TimelineEntry.Delivery.QUEUED, status_changed_at=now,
    )
    _store_attachments(entry, attachments)
    fields = ["last_message_at"]
    ticket.last_message_at = now
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        fields.append("first_response_at")
    if ticket.status == S.NEW:
        ticket.status = S.OPEN
        fields.append("status")
    _bump(ticket, fields)
    transaction.on_commit(lambda: enqueue_delivery(entry.pk), robust=True)
    events.publish_ticket_event("timeline.appended", ticket)
    return entry


ACKNOWLEDGEMENT_PLACEHOLDERS = re.compile(r"\{(number|status_link|subject)\}")


def acknowledgement_fill(template: str, *, ticket: Ticket) -> str:
    """An admin's acknowledgement text with exactly {number}, {status_link} and {subject} replaced,
    in one pass (a subject that reads "{status_link}" stays as the customer wrote it). Nothing else
    is interpreted: {{ }}, {% %} and other braces go out as written (never a template engine or
    str.format on admin text)."""
    from tickets.portal.links import status_url

    values = {"number": lambda: str(ticket.number), "status_link": lambda: status_url(ticket),
              "subject": lambda: ticket.subject or ""}
    return ACKNOWLEDGEMENT_PLACEHOLDERS.sub(lambda match: values[match.group(1)](), template)


def ticket_acknowledge(*, ticket: Ticket, first: TimelineEntry, templates: dict[str, str] | None = None) -> TimelineEntry | None:
    """Queue the automatic "we got your message" answer for a new ticket, once, in the customer's
    language: the channel's own text for that language (`templates`, language code -> text) when it
    has one, else the built-in text. It is marked automatic (so mail carries Auto-Submitted) and is
    not a first response."""
    from django.conf import settings
    from django.utils import translation

    from channels_inbound.delivery import enqueue_delivery

    opened_by_it = not ticket.entries.filter(kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND).exclude(pk=first.pk).exists()
    already = ticket.entries.filter(direction=TimelineEntry.Direction.OUTBOUND, is_auto_reply=True).exists()
    if not opened_by_it or already or first.identity is None:
        return None
    language = ticket.customer.language or settings.LANGUAGE_CODE
    templates = templates or {}
    own = templates.get(language) or templates.get(language.split("-")[0]) or ""
    if own.strip():
        text = acknowledgement_fill(own, ticket=ticket)
    else:
        with translation.override(ticket.customer.language or None):
            text = _(
                "Thank you for your message. We have opened request #%(number)s and will answer as soon as we can. "
                "Please keep the number in the subject if you write to us about it again."
            ) % {"number": ticket.number}
    entry = TimelineEntry.objects.create(
        ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.OUTBOUND,
        channel=first.channel, identity=first.identity, text=text, is_auto_reply=True,
        delivery_status=TimelineEntry.Delivery.QUEUED, status_changed_at=timezone.now(),
    )
    transaction.on_commit(lambda: enqueue_delivery(entry.pk), robust=True)
    events.publish_ticket_event("timeline.appended", ticket)
    return entry


@transaction.atomic
def ticket_add_note(*, ticket: Ticket, by: User, text: str, attachments: Iterable[InboundAttachment] = ()) -> TimelineEntry:
    ticket = _lock(ticket.pk)
    entry = TimelineEntry.objects.create(ticket=ticket, kind=TimelineEntry.Kind.NOTE, author_user=by, text=text)
    _store_attachments(entry, attachments)
    _bump(ticket)
    events.publish_ticket_event("timeline.appended", ticket)
    mentions_record(entry=entry, ticket=ticket, by=by)
    return entry


@transaction.atomic
def ticket_set_status(*, ticket: Ticket, status: str, by: User) -> Ticket:
    ticket = _lock(ticket.pk)
    if status == ticket.status:
        return ticket
    if ticket.status == S.CLOSED:
        raise TicketClosed(_("A closed ticket cannot change; a new message opens a follow-up ticket."))
    old = ticket.status
    now = timezone.now()
    ticket.status = status
    ticket.solved_at = now if status == S.SOLVED else (ticket.solved_at if status == S.CLOSED else None)
    ticket.closed_at = now if status == S.CLOSED else None
    _event_entry(ticket, by=by, action="status", data={"from": old, "to": status})
    _bump(ticket, ["status", "solved_at", "closed_at"])
    events.publish_ticket_event("ticket.updated", ticket)
    if status == S.SOLVED:
        from tickets.portal.surveys import csat_invite_on_solve

        csat_invite_on_solve(ticket)  # after commit; asked once per ticket
    return ticket


def _change(*, ticket: Ticket, by: User, field: str, value, check=None) -> Ticket:
    """Lock the ticket; unless nothing changes, refuse on a closed ticket, record a system event,
    save and publish (to the previous team or assignee too, so their lists drop the ticket)."""
    ticket = _lock(ticket.pk)
    attname = Ticket._meta.get_field(field).attname
    old, new = getattr(ticket, attname), getattr(value, "pk", value)
    if check is not None:
        check(ticket)
    if new == old:
        return ticket
    if ticket.status == S.CLOSED:
        raise TicketClosed()
    _event_entry(ticket, by=by, action=field, data={"from": old, "to": new})
    setattr(ticket, field, value)
    _bump(ticket, [field])
    previous = {f"previous_{attname}": old} if field in ("team", "assignee") else {}
    events.publish_ticket_event("ticket.updated", ticket, **previous)
    if field == "assignee" and new is not None and new != by.pk:
        events.publish_personal("assigned", new, ticket)
    return ticket


@transaction.atomic
def ticket_set_priority(*, ticket: Ticket, priority: str, by: User) -> Ticket:
    if not roles.is_supervisor(by):
        raise NotAllowed(_("Only supervisors set priorities."))
    return _change(ticket=ticket, by=by, field="priority", value=priority)


@transaction.atomic
def ticket_assign(*, ticket: Ticket, agent: User | None, by: User) -> Ticket:
    """Supervisors assign anyone; an agent may only take a ticket for themself or let it go."""
    if not roles.is_supervisor(by) and agent is not None and agent.pk != by.pk:
        raise NotAllowed(_("Only supervisors assign tickets to someone else."))
    if agent is not None and not roles.is_agent(agent):
        raise DomainError(_("%(name)s is not an agent.") % {"name": agent.display_name})

    def check(locked: Ticket) -> None:
        if not roles.is_supervisor(by) and agent is None and locked.assignee_id not in (None, by.pk):
            raise NotAllowed(_("Only supervisors unassign someone else's ticket."))

    return _change(ticket=ticket, by=by, field="assignee", value=agent, check=check)


@transaction.atomic
def ticket_set_team(*, ticket: Ticket, team: Team | None, by: User) -> Ticket:
    if not roles.is_supervisor(by):
        raise NotAllowed(_("Only supervisors move tickets between teams."))
    return _change(ticket=ticket, by=by, field="team", value=team)


CHANGE_ORDER = ("team", "assignee", "priority", "tags", "status")


@transaction.atomic
def ticket_change(*, ticket: Ticket, by: User, changes: dict) -> Ticket:
    """Several changes at once (the API's PATCH, the ticket form): all or none. Values equal to the
    current ones are skipped, so a form that resubmits an unchanged priority needs no supervisor.
    Team and assignee go first, status last (closing is the final word)."""
    setters = {
        "team": lambda t, v: ticket_set_team(ticket=t, team=v, by=by),
        "assignee": lambda t, v: ticket_assign(ticket=t, agent=v, by=by),
        "priority": lambda t, v: ticket_set_priority(ticket=t, priority=v, by=by),
        "tags": lambda t, v: ticket_set_tags(ticket=t, tags=v, by=by),
        "status": lambda t, v: ticket_set_status(ticket=t, status=v, by=by),
    }
    unknown = set(changes) - set(setters)
    if unknown:
        raise DomainError(_("These fields cannot be changed: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    for name in CHANGE_ORDER:
        if name not in changes:
            continue
        value = changes[name]
        current = sorted(ticket.tags.values_list("name", flat=True)) if name == "tags" else getattr(ticket, name)
        if (sorted(value) if name == "tags" else value) != current:
            ticket = setters[name](ticket, value)
    return ticket


@transaction.atomic
def team_save(*, team: Team | None, name: str | None = None, members: list[User] | None = None) -> Team:
    """Create (team=None) or change a team. Members' live subscriptions follow (omnicenter.signals)."""
    if team is None:
        team = Team.objects.create(name=name)
    elif name is not None and name != team.name:
        team.name = name
        team.save(update_fields=["name"])
    if members is not None:
        team.members.set(members)
    return team


@transaction.atomic
def team_delete(*, team: Team) -> None:
    """Delete a team; its tickets stay, without a team (visible to supervisors until re-routed)."""
    member_ids = list(team.members.values_list("pk", flat=True))
    team.delete()
    for user_id in member_ids:
        events.publish_membership_changed(user_id)


@transaction.atomic
def ticket_set_tags(*, ticket: Ticket, tags: list[str], by: User) -> Ticket:
    ticket = _lock(ticket.pk)
    names = sorted({t.strip()[:50] for t in tags if t.strip()})
    current = sorted(ticket.tags.values_list("name", flat=True))
    if names == current:
        return ticket
    if ticket.status == S.CLOSED:
        raise TicketClosed()
    for name in names:
        try:
            with transaction.atomic():  # a concurrent creation of the same tag must not abort us
                Tag.objects.get_or_create(name=name)
        except IntegrityError:
            pass
    ticket.tags.set(Tag.objects.filter(name__in=names))
    _event_entry(ticket, by=by, action="tags", data={"from": current, "to": names})
    _bump(ticket)
    events.publish_ticket_event("ticket.updated", ticket)
    return ticket


# --- Agent workspace (issue 6) ----------------------------------------------------------------------

MENTION = re.compile(r"(?<![\w.@])@([\w.+-]{1,150})")


def mentions_record(*, entry: TimelineEntry, ticket: Ticket, by: User) -> list[int]:
    """@username in a note: each mentioned agent who may see the ticket gets a Mention and a live
    notice. Anyone else mentioned is ignored (a note never leaks a ticket to an outsider)."""
    from django.contrib.auth import get_user_model

    from tickets.models import Mention
    from tickets.selectors import tickets_visible_to

    names = {m.rstrip(".") for m in MENTION.findall(entry.text)}
    if not names:
        return []
    mentioned = []
    for user in get_user_model().objects.filter(username__in=names, is_active=True).exclude(pk=by.pk):
        if roles.is_agent(user) and tickets_visible_to(user).filter(pk=ticket.pk).exists():
            Mention.objects.get_or_create(entry=entry, user=user, defaults={"ticket": ticket})
            events.publish_personal("mention", user.pk, ticket)
            mentioned.append(user.pk)
    return mentioned


def ticket_mark_seen(*, ticket: Ticket, user: User) -> None:
    """The agent looked at the ticket: it is no longer unread for them, nor are its mentions."""
    from tickets.models import Mention, TicketSeen

    now = timezone.now()
    TicketSeen.objects.bulk_create(  # one upsert, first visit or not
        [TicketSeen(user=user, ticket=ticket, seen_at=now)],
        update_conflicts=True, unique_fields=["user", "ticket"], update_fields=["seen_at"],
    )
    Mention.objects.filter(user=user, ticket=ticket, seen_at__isnull=True).update(seen_at=now)


class CannedNotAllowed(NotAllowed):
    code = "canned_not_allowed"


@transaction.atomic
def canned_response_save(*, by: User, title: str, body: str, shared: bool = False, canned=None):
    """Create or change a canned response. Personal ones belong to their author; shared ones are
    created and changed by supervisors only."""
    from tickets.models import CannedResponse

    title, body = title.strip(), body.strip()
    if not title or not body:
        raise DomainError(_("A canned response needs a title and a text."))
    if shared and not roles.is_supervisor(by):
        raise CannedNotAllowed(_("Only supervisors create shared canned responses."))
    if canned is not None:
        canned_check_editable(canned, by)
    canned = canned or CannedResponse()
    canned.title, canned.body = title[:100], body
    canned.owner = None if shared else by
    canned.save()
    return canned


def canned_check_editable(canned, by: User) -> None:
    if canned.owner_id is None and not roles.is_supervisor(by):
        raise CannedNotAllowed(_("Only supervisors change shared canned responses."))
    if canned.owner_id is not None and canned.owner_id != by.pk:
        raise CannedNotAllowed(_("That canned response is someone else's."))


def canned_response_delete(*, canned, by: User) -> None:
    canned_check_editable(canned, by)
    canned.delete()


CANNED_VARIABLE = re.compile(r"\{\{\s*(customer\.first_name|customer\.name|agent\.name|ticket\.number)\s*\}\}")


def canned_render(body: str, *, ticket: Ticket, agent: User) -> str:
    """Replace the variables, as plain text (the body is never a template)."""
    name = ticket.customer.display_name or ""
    values = {
        "customer.first_name": name.split()[0] if name.split() else "",
        "customer.name": name,
        "agent.name": agent.display_name,
        "ticket.number": str(ticket.number),
    }
    return CANNED_VARIABLE.sub(lambda m: values[m.group(1)], body)


AWAY_AFTER_SECONDS = 300
OFFLINE_AFTER_SECONDS = 120  # without a socket ping


def presence_set(*, user: User, status: str, manual: bool) -> None:
    """Set by hand (kept until set by hand again) or by activity (ignored while a hand-set status
    holds, except that activity after inactivity-away brings the agent back online)."""
    from tickets.models import AgentPresence

    if status not in AgentPresence.Status.values:
        raise DomainError(_("Unknown presence."))
    presence, _created = AgentPresence.objects.get_or_create(user=user)
    if not manual and presence.manual:
        presence.last_seen_at = timezone.now()
        presence.save(update_fields=["last_seen_at"])
        return
    presence.status, presence.manual, presence.last_seen_at = status, manual and status != "online", timezone.now()
    presence.save()


def presence_touch(*, user_id: int) -> None:
    """A live socket pinged: the agent is connected (the board shows offline after silence)."""
    from tickets.models import AgentPresence

    now = timezone.now()
    updated = AgentPresence.objects.filter(user_id=user_id).update(last_seen_at=now)
    if not updated:
        AgentPresence.objects.get_or_create(user_id=user_id, defaults={"status": "online", "last_seen_at": now})


@transaction.atomic
def tickets_bulk_change(*, tickets: list[Ticket], by: User, changes: dict) -> int:
    """The same change on many tickets: all or none (a refusal on one changes nothing)."""
    for ticket in sorted(tickets, key=lambda t: t.pk):  # lock order: ascending ids
        if "add_tag" in changes:
            current = list(ticket.tags.values_list("name", flat=True))
            ticket_set_tags(ticket=ticket, tags=[*current, changes["add_tag"]], by=by)
        else:
            ticket_change(ticket=ticket, by=by, changes=changes)
    return len(tickets)


class TicketMergeRefused(DomainError):
    code = "ticket_merge_refused"


@transaction.atomic
def ticket_merge(*, source: Ticket, into: Ticket, by: User) -> Ticket:
    """Merge `source` into `into` (same customer): its timeline and conversation keys move over, it
    is closed and points to the survivor. System entries on both record the merge."""
    if source.pk == into.pk:
        raise TicketMergeRefused(_("A ticket cannot be merged into itself."))
    first, second = sorted([source.pk, into.pk])
    locked = {t.pk: t for t in Ticket.objects.select_for_update(no_key=True).filter(pk__in=[first, second]).order_by("pk")}
    source, into = locked[source.pk], locked[into.pk]
    if source.customer_id != into.customer_id:
        raise TicketMergeRefused(_("Only tickets of the same customer can be merged."))
    if source.merged_into_id or source.status == S.CLOSED or into.status == S.CLOSED:
        raise TicketMergeRefused(_("A closed or already merged ticket cannot be merged."))
    TimelineEntry.objects.filter(ticket=source).update(ticket=into)
    TicketThread.objects.filter(ticket=source).update(ticket=into)
    from tickets.models import Mention

    Mention.objects.filter(ticket=source).update(ticket=into)
    last = max(filter(None, [source.last_message_at, into.last_message_at]), default=None)
    into.last_message_at = last
    _event_entry(into, by=by, action="merged_in", data={"ticket": source.pk})
    _bump(into, ["last_message_at"])
    old_status = source.status
    source.status, source.closed_at, source.merged_into = S.CLOSED, timezone.now(), into
    _event_entry(source, by=by, action="merged_into", data={"ticket": into.pk, "from": old_status})
    _bump(source, ["status", "closed_at", "merged_into"])
    events.publish_ticket_event("ticket.updated", source)
    events.publish_ticket_event("timeline.appended", into)
    return into


def tickets_check_mergeable(tickets: list[Ticket]) -> None:
    """Refuse a bulk merge that cannot succeed: fewer than two tickets, more than one customer, or a
    closed or already merged ticket. Checked on the confirmation step and again under the locks."""
    if len({t.pk for t in tickets}) < 2:
        raise TicketMergeRefused(_("Select at least two tickets to merge."))
    if len({t.customer_id for t in tickets}) > 1:
        raise TicketMergeRefused(_("Only tickets of the same customer can be merged."))
    if any(t.merged_into_id or t.status == S.CLOSED for t in tickets):
        raise TicketMergeRefused(_("A closed or already merged ticket cannot be merged."))


@transaction.atomic
def tickets_merge(*, tickets: list[Ticket], into: Ticket, by: User) -> Ticket:
    """Merge every ticket of `tickets` but `into` into `into` (all of one customer): all or none.
    Every row is locked first, in ascending id order, and checked under the lock; then each one
    goes through `ticket_merge`, so timelines, keys, events and live hints are what a single merge
    makes."""
    ids = sorted({t.pk for t in tickets} | {into.pk})
    locked = list(Ticket.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk"))
    if len(locked) != len(ids):
        raise TicketMergeRefused(_("One of the tickets no longer exists."))
    tickets_check_mergeable(locked)
    survivor = next(t for t in locked if t.pk == into.pk)
    for source in locked:
        if source.pk != survivor.pk:
            survivor = ticket_merge(source=source, into=survivor, by=by)
    return survivor


@transaction.atomic
def ticket_split(*, entry: TimelineEntry, by: User) -> Ticket:
    """Move one customer message out into a new ticket of the same customer and team."""
    ticket = _lock(entry.ticket_id)
    entry = TimelineEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.kind != TimelineEntry.Kind.MESSAGE or entry.direction != TimelineEntry.Direction.INBOUND:
        raise DomainError(_("Only a customer's message can be split into a new ticket."))
    if ticket.entries.filter(kind=TimelineEntry.Kind.MESSAGE).count() < 2:
        raise DomainError(_("The ticket's only message cannot be split off."))
    first_line = (entry.text.strip().splitlines() or [""])[0][:120]
    new = Ticket.objects.create(
        subject=first_line or ticket.subject, customer=ticket.customer, team=ticket.team, priority=ticket.priority,
        origin_channel=entry.channel or ticket.origin_channel, last_message_at=entry.created_at,
    )
    entry.ticket = new
    entry.save(update_fields=["ticket"])
    _event_entry(new, by=by, action="split_from", data={"ticket": ticket.pk})
    _event_entry(ticket, by=by, action="split_to", data={"ticket": new.pk})
    _bump(ticket)
    events.publish_ticket_event("ticket.created", new)
    events.publish_ticket_event("timeline.appended", ticket)
    return new


@transaction.atomic
def saved_view_save(*, by: User, name: str, folder: str, query: str, shared: bool = False):
    """Save the list's current view and filters under a name. Shared views: supervisors only."""
    from urllib.parse import parse_qsl, urlencode

    from tickets.inbox import FILTERS, VIEW_KEYS
    from tickets.models import SavedView

    name, folder = name.strip()[:80], folder.strip()[:60]
    if not name:
        raise DomainError(_("A saved view needs a name."))
    if shared and not roles.is_supervisor(by):
        raise CannedNotAllowed(_("Only supervisors create shared views."))
    params = {k: v for k, v in parse_qsl(query) if (k in FILTERS and v) or (k == "view" and v in VIEW_KEYS)}
    return SavedView.objects.create(owner=None if shared else by, name=name, folder=folder, query=urlencode(params)[:1000])


def saved_view_delete(*, saved, by: User) -> None:
    if saved.owner_id is None and not roles.is_supervisor(by):
        raise CannedNotAllowed(_("Only supervisors delete shared views."))
    if saved.owner_id is not None and saved.owner_id != by.pk:
        raise CannedNotAllowed(_("That view is someone else's."))
    saved.delete()
