"""Reads of the agent workspace (selectors): built-in views, filters, full-text search, counts.

Every function starts from `selectors.tickets_visible_to(user)`, so an agent never sees, counts or
finds another team's ticket. Each list costs a fixed number of queries, whatever its length.

"Callbacks due" lists the tickets with a callback request not done yet (`tickets.CallbackRequest`,
made by the portal, the phone menu and the web chat), whatever the ticket's status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import formats, timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext, pgettext_lazy

from omnicenter import roles
from tickets import selectors
from tickets.models import CallbackRequest, Mention, Ticket, TicketSeen, TimelineEntry

if TYPE_CHECKING:
    from omnicenter.models import User

OPEN = ("new", "open", "pending")
PAGE_SIZE = 50
MAX_PAGES = 10  # a live refresh re-renders at most this many loaded pages


@dataclass(frozen=True)
class View:
    key: str
    label: str


VIEWS = [
    View("mine", pgettext_lazy("inbox view", "Mine")),
    View("unassigned", pgettext_lazy("inbox view", "Unassigned")),
    View("teams", pgettext_lazy("inbox view", "My teams")),
    View("open", pgettext_lazy("inbox view", "All open")),
    View("pending", pgettext_lazy("inbox view", "Pending")),
    View("solved", pgettext_lazy("inbox view", "Solved")),
    View("mentions", pgettext_lazy("inbox view", "Mentions")),
    View("callbacks", pgettext_lazy("inbox view", "Callbacks due")),
    View("all", pgettext_lazy("inbox view", "All")),
]
VIEW_KEYS = {v.key for v in VIEWS}
DEFAULT_VIEW = "open"


def view_condition(key: str, user: User) -> Q:
    """The filter of a built-in view, for `user` (on top of what they may see)."""
    open_ = Q(status__in=OPEN)
    match key:
        case "mine":
            return open_ & Q(assignee=user)
        case "unassigned":
            return open_ & Q(assignee__isnull=True)
        case "teams":
            return open_ & Q(team_id__in=selectors.team_ids_of(user))
        case "open":
            return open_
        case "pending":
            return Q(status="pending")
        case "solved":
            return Q(status="solved")
        case "mentions":
            return open_ & Exists(Mention.objects.filter(ticket=OuterRef("pk"), user=user))
        case "callbacks":
            return Exists(CallbackRequest.objects.filter(ticket=OuterRef("pk"), done_at__isnull=True))
        case _:
            return Q()


COUNTED = (*OPEN, "solved")  # the statuses some counted view shows (closed tickets are in none)


def view_counts(user: User) -> dict[str, int]:
    """Every built-in view's count in one query.

    PostgreSQL: from the `ticket_counted` index alone (`_view_counts_indexed`); elsewhere (the
    embedded SQLite mode) one aggregate over what the user may see (`view_counts_aggregate`). Both
    give the same numbers (tests/tickets/test_inbox_counts.py)."""
    if connection.vendor == "postgresql":
        return _view_counts_indexed(user)
    return view_counts_aggregate(user)


def view_counts_aggregate(user: User) -> dict[str, int]:
    aggregates = {key: Count("pk", filter=view_condition(key, user)) for key in VIEW_KEYS if key != "all"}
    # Only rows that some counted view can match: closed tickets (the bulk of an old helpdesk)
    # are in none but "callbacks", so they are not scanned and aggregated for nothing.
    counted = Q(status__in=COUNTED) | view_condition("callbacks", user)
    return selectors.tickets_visible_to(user).filter(counted).aggregate(**aggregates)


# Supervisors see every ticket: the first part is then all counted tickets and the second empty.
# (A parameter folds away: `false OR team_id = ANY(...)` plans as the index condition alone.)
_COUNTS_SQL = """
WITH v AS (
    SELECT status, assignee_id, team_id = ANY(%(teams)s) AS in_team FROM tickets_ticket
     WHERE status = ANY(%(counted)s) AND (%(supervisor)s OR team_id = ANY(%(teams)s))
    UNION ALL
    SELECT status, assignee_id, FALSE FROM tickets_ticket
     WHERE NOT %(supervisor)s AND assignee_id = %(me)s AND status = ANY(%(counted)s)
       AND (team_id IS NULL OR NOT team_id = ANY(%(teams)s))
)
SELECT
    count(*) FILTER (WHERE status = ANY(%(open)s) AND assignee_id = %(me)s),
    count(*) FILTER (WHERE status = ANY(%(open)s) AND assignee_id IS NULL),
    count(*) FILTER (WHERE status = ANY(%(open)s) AND in_team),
    count(*) FILTER (WHERE status = ANY(%(open)s)),
    count(*) FILTER (WHERE status = 'pending'),
    count(*) FILTER (WHERE status = 'solved'),
    (SELECT count(DISTINCT m.ticket_id) FROM tickets_mention m JOIN tickets_ticket t ON t.id = m.ticket_id
      WHERE m.user_id = %(me)s AND t.status = ANY(%(open)s)
        AND (%(supervisor)s OR t.team_id = ANY(%(teams)s) OR t.assignee_id = %(me)s)),
    (SELECT count(DISTINCT c.ticket_id) FROM tickets_callbackrequest c JOIN tickets_ticket t ON t.id = c.ticket_id
      WHERE c.done_at IS NULL AND (%(supervisor)s OR t.team_id = ANY(%(teams)s) OR t.assignee_id = %(me)s))
FROM v
"""


def _view_counts_indexed(user: User) -> dict[str, int]:
    """The counts at 1M tickets: the aggregate above filtered what an agent may see with
    `team_id IN (...) OR assignee_id = me`, a bitmap OR that reads every heap page holding one of
    the team's tickets (a team's 100,000 tickets are on nearly all pages: 140-275 ms). Split into
    two disjoint parts, the team's tickets and the agent's own outside those teams, each part reads
    only the covering index (team, status, assignee) of counted statuses: an index-only scan.
    Mentions and callbacks are counted from their own tables, joined to visible tickets."""
    supervisor = roles.is_supervisor(user)
    if not supervisor and not roles.is_agent(user):
        return {key: 0 for key in VIEW_KEYS if key != "all"}
    params = {"supervisor": supervisor, "teams": selectors.team_ids_of(user), "me": user.pk,
              "counted": list(COUNTED), "open": list(OPEN)}
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, params)
        row = cursor.fetchone()
    return dict(zip(("mine", "unassigned", "teams", "open", "pending", "solved", "mentions", "callbacks"), row, strict=True))


FILTERS = ("channel", "status", "priority", "team", "assignee", "tag", "customer", "language", "q")


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip().isdigit()]


def apply_filters(queryset: QuerySet[Ticket], params, user: User, *, search: bool = True) -> QuerySet[Ticket]:
    """The list filters; unknown or malformed values filter nothing out rather than fail.
    `search=False`: all but the full-text search (`q`)."""
    if params.get("status"):
        queryset = queryset.filter(status__in=params["status"].split(","))
    if params.get("priority"):
        queryset = queryset.filter(priority__in=params["priority"].split(","))
    if params.get("team"):
        queryset = queryset.filter(team_id__in=_ints(params["team"]))
    assignee = params.get("assignee", "")
    if assignee == "none":
        queryset = queryset.filter(assignee__isnull=True)
    elif assignee == "me":
        queryset = queryset.filter(assignee=user)
    elif assignee.isdigit():
        queryset = queryset.filter(assignee_id=int(assignee))
    if params.get("customer", "").isdigit():
        queryset = queryset.filter(customer_id=int(params["customer"]))
    if params.get("language"):
        queryset = queryset.filter(customer__language=params["language"])
    if params.get("tag"):
        queryset = queryset.filter(Exists(Ticket.tags.through.objects.filter(ticket=OuterRef("pk"), tag__name=params["tag"])))
    if params.get("channel"):
        channel = params["channel"]
        on_channel = Q(channel__key=channel) | Q(channel__kind=channel)
        queryset = queryset.filter(Exists(TimelineEntry.objects.filter(on_channel, ticket=OuterRef("pk"))))
    term = params.get("q", "").strip()
    if term and search:
        queryset = queryset.filter(search_condition(term))
    return queryset


WORD = re.compile(r"\w+", re.UNICODE)


def search_condition(term: str) -> Q:
    """Full text over subjects and messages (not system events), or a ticket number (#1042).

    PostgreSQL: `to_tsvector('simple', ...)` with GIN indexes (migration 0003), every word a
    prefix, all words required. SQLite (the embedded mode): LIKE on the whole term.

    Views listed newest first try `recent_first_ids` before this (see `page_of`).
    """
    number = term.lstrip("#")
    by_number = Q(pk=int(number)) if number.isdigit() and len(number) < 12 else Q(pk__in=[])
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        words = search_words(term)
        if not words:
            return by_number
        query = SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config="simple")
        entries = (
            TimelineEntry.objects.annotate(fts=SearchVector("text", config="simple"))
            .filter(fts=query, ticket=OuterRef("pk"))
            .exclude(kind=TimelineEntry.Kind.EVENT)
        )
        subject = Ticket.objects.annotate(fts=SearchVector("subject", config="simple")).filter(fts=query).values("pk")
        return by_number | Q(pk__in=subject) | Exists(entries)
    entries = TimelineEntry.objects.filter(ticket=OuterRef("pk"), text__icontains=term).exclude(kind=TimelineEntry.Kind.EVENT)
    return by_number | Q(subject__icontains=term) | Exists(entries)


def search_words(term: str) -> list[str]:
    return WORD.findall(term.lower())[:8]


PRIORITY_RANK = Case(
    *(When(priority=code, then=Value(rank)) for code, rank in Ticket.PRIORITY_RANK.items()),
    default=Value(1), output_field=IntegerField(),
)


def ticket_list(user: User, view: str, params) -> QuerySet[Ticket]:
    """A view's tickets with filters, most urgent first, then the longest waiting (oldest last
    message first); solved tickets newest first. Tickets only: `page_of` cuts a page and fetches
    what the rows show."""
    unsearched = apply_filters(selectors.tickets_visible_to(user).filter(view_condition(view, user)), params, user,
                               search=False)
    term = params.get("q", "").strip()
    queryset = unsearched.filter(search_condition(term)) if term else unsearched
    if view in ("solved", "all"):
        queryset = queryset.order_by("-last_message_at", "-pk")
        if term and connection.vendor == "postgresql" and search_words(term):
            queryset.recent_first = (unsearched, term)  # tried first by `page_of`
        return queryset
    return queryset.annotate(rank=PRIORITY_RANK).order_by("-rank", "last_message_at", "pk")


#: tickets a newest-first search looks at before searching the whole view (`recent_first_ids`)
SEARCH_RECENT_TICKETS = 2000


def recent_first_ids(unsearched: QuerySet[Ticket], term: str, *, limit: int) -> list[int]:
    """The ids of the first `limit` matches of `term` among the SEARCH_RECENT_TICKETS newest tickets
    of `unsearched` (a view with its filters), newest first; PostgreSQL only.

    A common word matches hundreds of thousands of entries: through the GIN indexes every one of
    them was fetched and rechecked before the newest 51 tickets were kept (58 s at 1M tickets,
    docs/performance.md). Here the newest tickets are walked in order and each is checked on its
    own subject and entries (by the entries' ticket index; the vectors are written without the
    indexes' COALESCE so that no index is used), stopping at `limit`: about `limit` divided by the
    share of tickets that match. With fewer than `limit` matches among them the caller searches
    the whole view the usual way, so the first page is exactly the whole search's first page
    whenever this answers (everything outside the newest tickets is older than all of them).
    """
    words = search_words(term)
    number = term.lstrip("#")
    by_number = int(number) if number.isdigit() and len(number) < 12 else None
    inner, params = (unsearched.order_by("-last_message_at", "-pk")
                     .values("pk", "last_message_at", "subject")[:SEARCH_RECENT_TICKETS].query.sql_with_params())
    entry = TimelineEntry._meta.db_table
    query = " & ".join(f"{w}:*" for w in words)  # \w+ words only: nothing a tsquery would parse as syntax
    # Only model table names and Django's own compiled SQL are formatted in; values are parameters.
    sql = (
        f"SELECT r.pk FROM ({inner}) r WHERE r.pk = %s "  # noqa: S608
        "OR to_tsvector('simple'::regconfig, r.subject) @@ to_tsquery('simple'::regconfig, %s) "
        f"OR EXISTS (SELECT 1 FROM {entry} e WHERE e.ticket_id = r.pk AND e.kind <> %s "
        "AND to_tsvector('simple'::regconfig, e.text) @@ to_tsquery('simple'::regconfig, %s)) "
        "ORDER BY r.last_message_at DESC, r.pk DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, by_number, query, TimelineEntry.Kind.EVENT, query, limit])
        return [row[0] for row in cursor.fetchall()]


def page_of(queryset: QuerySet[Ticket], page: int, pages: int = 1, *, user: User) -> tuple[list[Ticket], bool]:
    """`pages` pages starting at `page` (1-based), and whether more follow. No COUNT query.

    Two statements: the page is sorted and cut on the tickets table alone (an id subquery with
    LIMIT), and only its rows are joined to customer, assignee and channel and annotated with
    `seen_at` for unread markers; then the rows' tag names. Joining first made PostgreSQL hash the
    whole customer table and join every open ticket of the view before the sort (23 of 34 ms at
    20,000 tickets, growing with the table)."""
    start = (page - 1) * PAGE_SIZE
    window = queryset.values("pk")[start:start + PAGE_SIZE * pages + 1]
    recent_first = getattr(queryset, "recent_first", None)
    if recent_first is not None:
        found = recent_first_ids(*recent_first, limit=start + PAGE_SIZE * pages + 1)
        if len(found) > start + PAGE_SIZE * pages:  # enough for the page and to know more follow
            window = found[start:]
    rows = list(
        Ticket.objects.filter(pk__in=window)
        .select_related("customer", "assignee", "origin_channel")
        # Only what a row shows: no customer attributes or channel settings (JSON) decoded per row.
        .only(*ROW_FIELDS)
        .annotate(seen_at=Subquery(TicketSeen.objects.filter(user=user, ticket=OuterRef("pk")).values("seen_at")[:1]),
                  **({"rank": PRIORITY_RANK} if "rank" in queryset.query.annotations else {}))
        .order_by(*queryset.query.order_by)
    )
    # Tag names in one statement, without a related manager and Tag instances per row.
    names: dict[int, list[str]] = {}
    for ticket_id, name in Ticket.tags.through.objects.filter(ticket__in=[t.pk for t in rows]).order_by("tag__name") \
            .values_list("ticket_id", "tag__name"):
        names.setdefault(ticket_id, []).append(name)
    for t in rows:
        t.tag_names = names.get(t.pk, [])
    return rows[:PAGE_SIZE * pages], len(rows) > PAGE_SIZE * pages


ROW_FIELDS = (
    "subject", "status", "priority", "last_message_at", "version", "customer_id", "assignee_id", "origin_channel_id",
    "customer__display_name", "assignee__username", "assignee__first_name", "assignee__last_name", "origin_channel__kind",
)


def label_rows(rows: list[Ticket], *, tickets_url: str, now: datetime) -> list[Ticket]:
    """What each list row shows, worked out once per list in Python rather than per row by the
    template engine, where each value costs a lookup chain, a filter call and localization:
    choice labels (Django's `get_FOO_display` also rebuilds a hashable copy of the choices on
    every call, and translates), the unread marker, the checkbox's label, the link, the times, and
    ids as text (a number in a template goes through `number_format`). The template still escapes
    every value. Live list refreshes render this for every agent, so it is the hottest template."""
    from channels_inbound.models import Channel

    statuses = {code: str(label) for code, label in Ticket.Status.choices}
    priorities = {code: str(label) for code, label in Ticket.Priority.choices}
    kinds = {code: str(label) for code, label in Channel.Kind.choices}
    select = gettext("Select #%(number)s")
    for t in rows:
        t.ref = str(t.number)
        t.href = f"{tickets_url}{t.pk}/"
        t.status_label = statuses.get(t.status, t.status)
        t.priority_label = priorities.get(t.priority, t.priority)
        t.channel_label = kinds.get(t.origin_channel.kind, t.origin_channel.kind) if t.origin_channel else ""
        seen_at = getattr(t, "seen_at", None)
        t.unread = bool(t.last_message_at and (not seen_at or t.last_message_at > seen_at))
        t.pick_label = select % {"number": t.ref}
        t.customer_name = str(t.customer)
        t.assignee_name = t.assignee.display_name if t.assignee else ""
        if t.last_message_at:
            local = timezone.localtime(t.last_message_at)
            t.last_iso, t.last_title = local.isoformat(), formats.date_format(local, "SHORT_DATETIME_FORMAT")
            t.waiting = timesince(t.last_message_at, now)
    return rows


def unseen_mentions(user: User) -> int:
    return Mention.objects.filter(user=user, seen_at__isnull=True).count()
