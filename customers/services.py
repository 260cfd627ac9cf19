"""Every write on customers: identity resolution, merge and un-merge, GDPR export and erase."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.identities import PRECEDENCE, IdentityClaim
from customers.models import Customer, CustomerMerge, Identity, MergeSuggestion
from omnicenter import rawsql
from omnicenter.errors import Conflict, DomainError

if TYPE_CHECKING:
    from omnicenter.models import User

logger = logging.getLogger(__name__)

LAST_SEEN_PRECISION = timedelta(seconds=60)
PROFILE_FIELDS = ("display_name", "lifecycle_stage", "language", "attributes", "organization_id")


class IdentityTaken(Conflict):
    code = "identity_taken"


class MergeNotAllowed(DomainError):
    code = "merge_not_allowed"


@dataclass
class Resolution:
    customer: Customer
    identity: Identity
    created: bool


def _pair(a: Customer, b: Customer) -> tuple[Customer, Customer]:
    return (a, b) if a.pk < b.pk else (b, a)


def merge_suggestion_record(*, customer: Customer, other: Customer, reason: str) -> None:
    if customer.pk == other.pk:
        return
    first, second = _pair(customer, other)
    MergeSuggestion.objects.get_or_create(customer=first, other=second, defaults={"reason": reason[:300]})


def _claims_query(claims: list[IdentityClaim]) -> Q:
    return reduce(or_, (Q(kind=c.kind, namespace=c.namespace, value=c.value) for c in claims))


def customer_resolve(
    *, claims: list[IdentityClaim], display_name: str = "", language: str = ""
) -> Resolution:
    """Resolve what a channel told us about a sender to one customer (DESIGN.md step 6).

    The highest-precedence known verified identity wins. Other known identities that point at a
    different customer yield a merge suggestion, never a merge. Unknown claims are attached to
    the winner: that is the explicit signal (the sender used them together). Unverified claims
    only ever attach to the claimant and never select a customer.
    """
    if not claims:
        raise DomainError(_("A message needs at least one sender identity."))
    claims = sorted(dict.fromkeys(claims), key=lambda c: (not c.verified, PRECEDENCE.get(c.kind, 9)))
    verified = [c for c in claims if c.verified]
    known: dict[tuple[str, str, str], Identity] = {}
    if verified:
        for identity in _verified_identities(verified):
            known[(identity.kind, identity.namespace, identity.value)] = identity

    # A merge leaves behind a verified identity that `into` held as an unverified claim: its
    # messages belong to the surviving customer, never to the merged one.
    owners = {key: _survivor(identity.customer) for key, identity in known.items()}
    created = False
    customer = next((owners[c.key] for c in verified if c.key in owners), None)
    if customer is None:
        name = display_name or next((c.display_name for c in claims if c.display_name), "")
        customer = Customer.objects.create(display_name=name[:200], language=language[:8])
        created = True

    for c in verified:
        owner = owners.get(c.key)
        if owner is not None and owner.pk != customer.pk:
            merge_suggestion_record(
                customer=customer, other=owner,
                reason=f"{c.kind} {c.value} belongs to another customer than a message's other identities",
            )

    primary: Identity | None = None
    for c in claims:
        identity = known.get(c.key) if c.verified else None
        if identity is None:
            identity = _identity_attach(customer=customer, claim=c)
            if c.verified:
                known[c.key] = identity
        if primary is None:
            primary = identity
    assert primary is not None
    now = timezone.now()
    # A minute's precision is enough, and spares a write per message in a burst from one sender.
    stale = [i.pk for i in known.values() if i.last_seen_at is None or now - i.last_seen_at > LAST_SEEN_PRECISION]
    if stale:
        Identity.objects.filter(pk__in=stale).update(last_seen_at=now)
    if primary.customer_id != customer.pk and _survivor(primary.customer).pk != customer.pk:
        # Lost a race for a brand-new sender: the concurrent writer's customer owns the identity.
        if created and not customer.identities.exists():
            customer.delete()
        return Resolution(customer=primary.customer, identity=primary, created=False)
    return Resolution(customer=customer, identity=primary, created=created)


def _verified_identities(claims: list[IdentityClaim]) -> list[Identity]:
    """The verified identities matching `claims`, each with its customer: one hand-written SELECT
    (every inbound message runs it; omnicenter/rawsql.py says why)."""
    match = " OR ".join(["(i.kind = %s AND i.namespace = %s AND i.value = %s)"] * len(claims))
    sql = (
        f"SELECT {rawsql.columns(Identity, 'i')}, {rawsql.columns(Customer, 'c')} "  # noqa: S608
        f"FROM {Identity._meta.db_table} i JOIN {Customer._meta.db_table} c ON c.id = i.customer_id "
        f"WHERE i.verified AND ({match})"
    )
    params = [value for c in claims for value in (c.kind, c.namespace, c.value)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        identity = rawsql.instance(Identity, row)
        Identity.customer.field.set_cached_value(identity, rawsql.instance(Customer, row, rawsql.width(Identity)))
        found.append(identity)
    return found
def customers_resolve_many(*, requests: list[tuple[list[IdentityClaim], str, str]]) -> list[Resolution]:
    """`customer_resolve` for many senders at once, in order: (claims, display name, language) each.

    For bulk ingestion (a mailbox import). A sender with one verified claim, the usual case, costs
    a share of three statements (the known identities, the new customers, their identities) instead
    of one to five of its own; the rules are `customer_resolve`'s (the known identity's surviving
    customer, else a new customer owning the claim), applied in order, so a sender new to the
    database and seen twice is created once. Anything else (several or unverified claims, an
    identity created concurrently) goes through `customer_resolve` itself, one at a time.
    """
    results: list[Resolution | None] = [None] * len(requests)
    simple = {i: claims[0] for i, (claims, _n, _l) in enumerate(requests) if len(claims) == 1 and claims[0].verified}
    known: dict[tuple[str, str, str], Identity] = {}
    if simple:
        wanted = list({c.key: c for c in simple.values()}.values())
        for identity in _verified_identities(wanted):
            known[(identity.kind, identity.namespace, identity.value)] = identity
    now = timezone.now()
    new: dict[tuple[str, str, str], tuple[int, Customer]] = {}
    for i, c in simple.items():
        if c.key not in known and c.key not in new:
            _claims, display_name, language = requests[i]
            new[c.key] = (i, Customer(display_name=(display_name or c.display_name)[:200], language=language[:8]))
    if new:
        Customer.objects.bulk_create([customer for _i, customer in new.values()])
        Identity.objects.bulk_create([
            Identity(customer=customer, kind=simple[i].kind, namespace=simple[i].namespace, value=simple[i].value,
                     verified=True, display_name=simple[i].display_name, last_seen_at=now)
            for i, customer in new.values()
        ], ignore_conflicts=True)
        mine = {(x.kind, x.namespace, x.value): x for x in Identity.objects.filter(
            _claims_query([simple[i] for i, _c in new.values()]), verified=True,
            customer__in=[customer for _i, customer in new.values()])}
        lost = [customer.pk for key, (_i, customer) in new.items() if key not in mine]
        if lost:
            # Another writer created these identities meanwhile: its customers own them, as in
            # `customer_resolve`'s lost race; the customers made for them here go again.
            Customer.objects.filter(pk__in=lost).delete()
        for key, identity in mine.items():
            identity.customer = new[key][1]
        known.update(mine)
    stale = [x.pk for key, x in known.items() if key not in new and
             (x.last_seen_at is None or now - x.last_seen_at > LAST_SEEN_PRECISION)]
    if stale:
        Identity.objects.filter(pk__in=stale).update(last_seen_at=now)
    seen_new: set[tuple[str, str, str]] = set()
    for i, c in simple.items():
        identity = known.get(c.key)
        if identity is None:
            continue  # lost the race above: resolved one at a time below
        first_of_new = c.key in new and c.key not in seen_new
        seen_new.add(c.key)
        customer = _survivor(identity.customer)
        results[i] = Resolution(customer=customer, identity=identity, created=first_of_new)
    for i, result in enumerate(results):
        if result is None:
            claims, display_name, language = requests[i]
            results[i] = customer_resolve(claims=claims, display_name=display_name, language=language)
    return results  # type: ignore[return-value]


def _survivor(customer: Customer) -> Customer:
    while customer.merged_into_id:
        customer = Customer.objects.get(pk=customer.merged_into_id)
    return customer


def _identity_attach(*, customer: Customer, claim: IdentityClaim) -> Identity:
    """Attach a claim to `customer`, tolerating a concurrent writer of the same verified identity."""
    if not claim.verified:
        identity, _created = Identity.objects.get_or_create(
            customer=customer, kind=claim.kind, namespace=claim.namespace, value=claim.value,
            defaults={"verified": False, "display_name": claim.display_name, "last_seen_at": timezone.now()},
        )
        return identity
    try:
        with transaction.atomic():
            return Identity.objects.create(
                customer=customer, kind=claim.kind, namespace=claim.namespace, value=claim.value,
                verified=True, display_name=claim.display_name, last_seen_at=timezone.now(),
            )
    except IntegrityError:
        # Another message from the same sender won the race. Use its identity and say so.
        identity = Identity.objects.select_related("customer").get(
            kind=claim.kind, namespace=claim.namespace, value=claim.value, verified=True
        )
        if identity.customer_id != customer.pk:
            merge_suggestion_record(
                customer=customer, other=identity.customer, reason=f"{claim.kind} {claim.value} arrived concurrently"
            )
        return identity


def identity_add(*, customer: Customer, claim: IdentityClaim) -> Identity:
    """An agent or integrator adds an identity by hand. A verified one held by someone else is refused."""
    if claim.verified:
        holder = Identity.objects.filter(
            kind=claim.kind, namespace=claim.namespace, value=claim.value, verified=True
        ).first()
        if holder is not None:
            if holder.customer_id == customer.pk:
                return holder
            raise IdentityTaken(_("This identity belongs to another customer; merge the two customers instead."))
    return _identity_attach(customer=customer, claim=claim)


@dataclass
class Confirmation:
    """What proving ownership of an identity did: who the claimant is now."""

    customer: Customer
    identity: Identity
    #: the claimant's own customer was merged into the identity's holder
    merge: CustomerMerge | None = None
    #: the identity belongs to another customer that could not be merged automatically
    suggested: bool = False


#: Identities that say nothing about who a person is beyond "this browser": a customer holding
#: only these (an anonymous chat visitor) is folded into whoever they prove to be.
ANONYMOUS_KINDS = (Identity.Kind.VISITOR,)


@transaction.atomic
def identity_confirm(*, customer: Customer, claim: IdentityClaim) -> Confirmation:
    """The holder of `customer` proved that `claim` is theirs (e.g. a one-time code sent to that
    email came back). Their unverified claim becomes a verified identity. If another customer
    already holds it verified, that customer is who they are: a customer known only through
    anonymous identities is merged into the holder (recorded, so an agent can undo it); any other
    gets a merge suggestion and stays as it is."""
    assert claim.verified, "confirm a verified claim"
    customer = _survivor(customer)
    holder = (
        Identity.objects.select_related("customer")
        .filter(kind=claim.kind, namespace=claim.namespace, value=claim.value, verified=True).first()
    )
    if holder is None:
        stale_claim = customer.identities.filter(kind=claim.kind, namespace=claim.namespace, value=claim.value,
                                                 verified=False).first()
        try:
            with transaction.atomic():
                if stale_claim is not None:
                    stale_claim.verified = True
                    stale_claim.last_seen_at = timezone.now()
                    stale_claim.save(update_fields=["verified", "last_seen_at"])
                    return Confirmation(customer=customer, identity=stale_claim)
                identity = _identity_attach(customer=customer, claim=claim)
        except IntegrityError:
            # Someone confirmed the same address a moment ago: they hold it now.
            holder = Identity.objects.select_related("customer").get(
                kind=claim.kind, namespace=claim.namespace, value=claim.value, verified=True
            )
        else:
            if identity.customer_id == customer.pk:
                return Confirmation(customer=customer, identity=identity)
            holder = identity
    owner = _survivor(holder.customer)
    if owner.pk == customer.pk:
        return Confirmation(customer=customer, identity=holder)
    anonymous = not customer.identities.filter(verified=True).exclude(kind__in=ANONYMOUS_KINDS).exists()
    if anonymous and not customer.erased_at and not owner.erased_at:
        # The claim is on the owner now; the claimant's unverified copy of it is redundant.
        customer.identities.filter(kind=claim.kind, namespace=claim.namespace, value=claim.value, verified=False).delete()
        merge = customer_merge(into=owner, other=customer, by=None)
        return Confirmation(customer=owner, identity=holder, merge=merge)
    merge_suggestion_record(customer=customer, other=owner,
                            reason=f"{claim.kind} {claim.value} was confirmed by another customer's visitor")
    return Confirmation(customer=customer, identity=holder, suggested=True)


@transaction.atomic
def customer_create(*, claims: list[IdentityClaim], **fields: Any) -> Customer:
    """A customer entered by hand or by an integrator, with identities; all or nothing."""
    allowed = {"display_name", "lifecycle_stage", "language", "attributes", "organization"}
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(_("These fields cannot be set: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    customer = Customer.objects.create(**fields)
    for claim in claims:
        identity_add(customer=customer, claim=claim)
    return customer


def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    allowed = {"display_name", "lifecycle_stage", "language", "attributes", "organization"}
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(_("These fields cannot be changed: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.save(update_fields=[*fields, "updated_at"])
    return customer


def _profile(customer: Customer) -> dict[str, Any]:
    return {name: getattr(customer, name) for name in PROFILE_FIELDS}


def _lock_pair(a_id: int, b_id: int) -> dict[int, Customer]:
    # Lock order: customers by ascending id (the only multi-customer lock in the code base).
    return {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[a_id, b_id]).order_by("pk")}


@transaction.atomic
def customer_merge(*, into: Customer, other: Customer, by: User | None) -> CustomerMerge:
    """Move `other`'s identities and tickets to `into`, remembering exactly what moved."""
    from tickets.models import Ticket

    if into.pk == other.pk:
        raise MergeNotAllowed(_("A customer cannot be merged with itself."))
    locked = _lock_pair(into.pk, other.pk)
    into, other = locked[into.pk], locked[other.pk]
    for c in (into, other):
        if c.merged_into_id or c.erased_at:
            raise MergeNotAllowed(_("%(name)s was already merged or erased.") % {"name": c})

    into_before = _profile(into)
    existing = set(into.identities.values_list("kind", "namespace", "value", "verified"))
    identity_ids = [
        i.pk for i in other.identities.all() if (i.kind, i.namespace, i.value, i.verified) not in existing
    ]
    ticket_ids = list(Ticket.objects.filter(customer=other).values_list("pk", flat=True))
    suggestion_ids = list(
        MergeSuggestion.objects.filter(
            Q(customer=into, other=other) | Q(customer=other, other=into), status=MergeSuggestion.Status.OPEN
        ).values_list("pk", flat=True)
    )

    Identity.objects.filter(pk__in=identity_ids).update(customer=into)
    Ticket.objects.filter(pk__in=ticket_ids).update(customer=into)
    MergeSuggestion.objects.filter(pk__in=suggestion_ids).update(status=MergeSuggestion.Status.MERGED)

    # Fill what `into` lacks from `other`; what `into` already says wins.
    into.display_name = into.display_name or other.display_name
    into.language = into.language or other.language
    into.organization_id = into.organization_id or other.organization_id
    into.attributes = {**other.attributes, **into.attributes}
    into.save(update_fields=["display_name", "language", "organization", "attributes", "updated_at"])
    other.merged_into = into
    other.save(update_fields=["merged_into", "updated_at"])

    return CustomerMerge.objects.create(
        into=into, other=other, merged_by=by,
        moved={
            "identities": identity_ids,
            "tickets": ticket_ids,
            "suggestions": suggestion_ids,
            "into_before": into_before,
            "into_after": _profile(into),
        },
    )


@transaction.atomic
def customer_unmerge(*, merge: CustomerMerge, by: User | None) -> None:
    """Undo a merge: what moved goes back, what happened since stays with the surviving customer."""
    from tickets.models import Ticket

    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise MergeNotAllowed(_("This merge was already undone."))
    locked = _lock_pair(merge.into_id, merge.other_id)
    into, other = locked[merge.into_id], locked[merge.other_id]
    if into.merged_into_id:
        raise MergeNotAllowed(_("Undo the later merge of %(name)s first.") % {"name": into})
    if other.merged_into_id != into.pk or other.erased_at or into.erased_at:
        raise MergeNotAllowed(_("This merge can no longer be undone."))

    moved = merge.moved
    Identity.objects.filter(pk__in=moved.get("identities", []), customer=into).update(customer=other)
    Ticket.objects.filter(pk__in=moved.get("tickets", []), customer=into).update(customer=other)
    MergeSuggestion.objects.filter(pk__in=moved.get("suggestions", [])).update(status=MergeSuggestion.Status.OPEN)

    # Restore a profile field only if nobody changed it after the merge.
    before, after = moved.get("into_before", {}), moved.get("into_after", {})
    changed = []
    for name in PROFILE_FIELDS:
        if name in before and getattr(into, name) == after.get(name):
            setattr(into, name, before[name])
            changed.append(name.removesuffix("_id") if name.endswith("_id") else name)
    if changed:
        into.save(update_fields=[*changed, "updated_at"])
    other.merged_into = None
    other.save(update_fields=["merged_into", "updated_at"])
    merge.undone_at = timezone.now()
    merge.undone_by = by
    merge.save(update_fields=["undone_at", "undone_by"])


def contact_window_extend(*, identity: Identity, channel_kind: str, until) -> None:
    """The customer wrote: the provider's messaging window for (identity, channel kind) - WhatsApp's
    and Meta's customer-care windows - runs until `until`. It only ever moves later, also when
    messages are processed out of order or concurrently (a conditional UPDATE, not read-then-write)."""
    from customers.models import ContactPreference

    _preference, created = ContactPreference.objects.get_or_create(
        identity=identity, channel_kind=channel_kind, defaults={"window_expires_at": until},
    )
    if not created:
        ContactPreference.objects.filter(identity=identity, channel_kind=channel_kind).filter(
            Q(window_expires_at__isnull=True) | Q(window_expires_at__lt=until)
        ).update(window_expires_at=until)


def customer_export(*, customer: Customer) -> dict[str, Any]:
    """Everything we hold about a customer and their public conversations, as JSON-ready data."""
    from tickets.models import TimelineEntry
    from tickets.selectors import tickets_of_customer

    tickets = []
    for ticket in tickets_of_customer(customer).prefetch_related("entries__attachments", "entries__channel"):
        entries = [
            {
                "at": e.created_at.isoformat(),
                "kind": e.kind,
                "direction": e.direction,
                "channel": e.channel.kind if e.channel else None,
                "text": e.text,
                "attachments": [a.filename for a in e.attachments.all()],
            }
            for e in ticket.entries.all()
            if e.kind != TimelineEntry.Kind.NOTE
        ]
        tickets.append({
            "number": ticket.number, "subject": ticket.subject, "status": ticket.status,
            "created_at": ticket.created_at.isoformat(), "timeline": entries,
        })
    return {
        "customer": {
            "id": str(customer.public_id),
            "name": customer.display_name,
            "lifecycle_stage": customer.lifecycle_stage,
            "language": customer.language,
            "attributes": customer.attributes,
            "organization": customer.organization.name if customer.organization else None,
            "created_at": customer.created_at.isoformat(),
        },
        "identities": [
            {"kind": i.kind, "value": i.value, "verified": i.verified, "created_at": i.created_at.isoformat()}
            for i in customer.identities.all()
        ],
        "tickets": tickets,
        "exported_at": timezone.now().isoformat(),
    }


@transaction.atomic
def _erase_waiting_events(customer: Customer) -> None:
    """Raw provider events that name the person and are on no timeline entry:

    - events not yet processed (an API payload with their email, phone or id) would re-create what
      was erased: they are emptied and given up;
    - processed events that made no timeline entry (read and delivery receipts, message edits and
      unsends, which carry the sender's id and an edited text) are emptied and stay processed.

    Events are matched by the person's identity values in the payload; raw emails by the sender's
    address in their headers. Events behind timeline entries are emptied by `customer_erase`."""
    import base64

    from django.db.models import TextField
    from django.db.models.functions import Cast

    from channels_inbound.models import InboundEvent

    values = [v for v in customer.identities.values_list("value", flat=True) if len(v) >= 4]
    if not values:
        return
    candidates = (
        InboundEvent.objects.filter(~Q(status=InboundEvent.Status.PROCESSED) | Q(entries__isnull=True))
        .exclude(payload={}).annotate(text=Cast("payload", TextField()))
    )
    match = Q()
    for value in values:
        match |= Q(text__icontains=value)
    hits = set(candidates.filter(match).values_list("pk", flat=True))
    lowered = [v.lower().encode() for v in values]
    for event in candidates.filter(payload__has_key="raw_b64").exclude(pk__in=hits).only("pk", "payload").iterator():
        head = base64.b64decode(event.payload.get("raw_b64") or "")[:16384].lower()
        if any(v in head for v in lowered):
            hits.add(event.pk)
    found = InboundEvent.objects.filter(pk__in=hits)
    found.filter(status=InboundEvent.Status.PROCESSED).update(payload={}, headers={})
    found.exclude(status=InboundEvent.Status.PROCESSED).update(
        payload={}, headers={}, status=InboundEvent.Status.DEAD, next_attempt_at=None,
        last_error="Emptied by a GDPR erasure before it was processed.",
    )


def _erase_chat_email_codes(customer: Customer) -> None:
    from channels_inbound.models import WebchatEmailCode

    codes = Q(email__in=list(customer.identities.filter(kind=Identity.Kind.EMAIL).values_list("value", flat=True)))
    for namespace, value in customer.identities.filter(kind=Identity.Kind.VISITOR).values_list("namespace", "value"):
        codes |= Q(channel__key=namespace, visitor=value)
    WebchatEmailCode.objects.filter(codes).delete()


def customer_erase(*, customer: Customer, by: User | None) -> None:
    """GDPR erasure: remove what identifies the person, keep ticket rows for statistics."""
    from channels_inbound.models import InboundEvent
    from tickets.models import Attachment, Ticket, TimelineEntry

    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at:
        return
    # Customers merged into this one are the same person: their profiles and leftover identities go too.
    for absorbed in Customer.objects.filter(merged_into=customer, erased_at__isnull=True):
        customer_erase(customer=absorbed, by=by)
    tickets = Ticket.objects.filter(customer=customer)
    entries = TimelineEntry.objects.filter(ticket__in=tickets)
    # Files go after commit: a rollback must not leave rows pointing at deleted files.
    files = [(a.file.storage, a.file.name) for a in Attachment.objects.filter(entry__in=entries)]
    transaction.on_commit(lambda: [storage.delete(name) for storage, name in files])
    Attachment.objects.filter(entry__in=entries).delete()
    InboundEvent.objects.filter(entries__in=entries).update(payload={}, headers={})
    _erase_waiting_events(customer)
    entries.filter(kind__in=[TimelineEntry.Kind.MESSAGE, TimelineEntry.Kind.CALL]).update(
        text="", html="", data={}
    )
    tickets.update(subject=_("[erased]"))
    # The web chat's email events name the address; its one-time codes name visitor and address.
    for action in ("webchat_transcript", "webchat_replies_emailed", "webchat_email_verified"):
        entries.filter(kind=TimelineEntry.Kind.EVENT, data__action=action).update(data={"action": action, "erased": True})
    _erase_chat_email_codes(customer)
    customer.identities.all().delete()
    customer.display_name = ""
    customer.attributes = {}
    customer.language = ""
    customer.organization = None
    customer.erased_at = timezone.now()
    customer.save(update_fields=["display_name", "attributes", "language", "organization", "erased_at", "updated_at"])
    logger.info("customer %s erased by %s", customer.pk, getattr(by, "pk", None))
