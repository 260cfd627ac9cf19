"""The three-pane workspace (/app/) through the Django test client: views and counts, filters,
full-text search, paging, bulk changes, the composer (targets, canned responses, mentions,
collision warning), ETags, merge and split, the customer sidebar, presence and the queue board."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_inbound.base import NormalizedMessage
from channels_inbound.services import message_ingest
from customers import identities
from customers.models import CustomerMerge, MergeSuggestion
from tests.factories import CustomerFactory, EntryFactory, IdentityFactory, TicketFactory
from tickets import inbox, services
from tickets.models import AgentPresence, CannedResponse, Mention, Tag, Ticket, TicketSeen, TimelineEntry


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture
def tickets(people, api_channel):
    ch = api_channel.channel
    t = {
        "mine": TicketFactory(subject="Printer on fire", customer=people.customer, team=people.team_a, status="open",
                              assignee=people.agent_a, origin_channel=ch, last_message_at=ago(5)),
        "unassigned": TicketFactory(subject="Refund please", customer=people.customer, team=people.team_a, status="new",
                                    origin_channel=ch, last_message_at=ago(30)),
        "urgent": TicketFactory(subject="Server down", customer=people.other_customer, team=people.team_a, status="open",
                                priority="urgent", origin_channel=ch, last_message_at=ago(1)),
        "pending": TicketFactory(subject="Waiting for photos", customer=people.customer, team=people.team_a,
                                 status="pending", last_message_at=ago(60)),
        "solved": TicketFactory(subject="Thanks a lot", customer=people.customer, team=people.team_a, status="solved",
                                last_message_at=ago(90)),
        "other_team": TicketFactory(subject="Secret of team B", customer=people.customer, team=people.team_b,
                                    status="open", last_message_at=ago(4)),
    }
    EntryFactory(ticket=t["mine"], channel=ch, identity=people.customer.identities.get(), author_customer=people.customer,
                 text="Smoke everywhere in the office")
    EntryFactory(ticket=t["other_team"], text="Team B confidential words", author_customer=people.customer)
    return t


def get(client, user, url: str, **params) -> str:
    client.force_login(user)
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def listed(html: str, tickets: dict) -> list[str]:
    """Keys of `tickets` in the order the list shows them."""
    positions = {key: html.find(f'data-ticket-id="{t.pk}"') for key, t in tickets.items()}
    return [key for key, pos in sorted(positions.items(), key=lambda kv: kv[1]) if pos >= 0]


# --- views and counts -------------------------------------------------------------------------------

def test_view_counts_are_per_view_and_only_what_the_agent_may_see(people, tickets):
    counts = inbox.view_counts(people.agent_a)

    assert counts["mine"] == 1
    assert counts["unassigned"] == 3  # refund, urgent, pending
    assert counts["open"] == 4 and counts["teams"] == 4
    assert counts["pending"] == 1 and counts["solved"] == 1
    assert counts["mentions"] == 0 and counts["callbacks"] == 0
    assert inbox.view_counts(people.supervisor)["open"] == 5


def test_the_counts_are_shown_next_to_the_views(people, tickets, client):
    html = get(client, people.agent_a, "/app/", fragment="views")

    assert '<span class="count" data-count="open">4</span>' in html
    assert '<span class="count" data-count="mine">1</span>' in html


def test_callbacks_due_lists_tickets_with_a_callback_request_not_done_yet(people, tickets):
    from django.utils import timezone

    from tickets.models import CallbackRequest

    due = CallbackRequest.objects.create(ticket=tickets["unassigned"], phone="+48601234567", preferred_at=timezone.now())
    CallbackRequest.objects.create(ticket=tickets["solved"], phone="+48601234567", preferred_at=timezone.now(),
                                   done_at=timezone.now())
    services.ticket_set_tags(ticket=tickets["mine"], tags=["callback"], by=people.agent_a)  # a tag alone is not a request

    shown = list(inbox.ticket_list(people.agent_a, "callbacks", {}))

    assert shown == [due.ticket]
    assert inbox.view_counts(people.agent_a)["callbacks"] == 1


def test_the_list_is_sorted_by_priority_then_longest_waiting(people, tickets, client):
    html = get(client, people.agent_a, "/app/", view="open", fragment="list")

    assert listed(html, tickets) == ["urgent", "pending", "unassigned", "mine"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"priority": "urgent"}, ["urgent"]),
    ({"assignee": "me"}, ["mine"]),
    ({"assignee": "none", "status": "new"}, ["unassigned"]),
    ({"tag": "vip"}, ["unassigned"]),
    ({"language": "pl"}, ["urgent"]),
    ({"channel": "api"}, ["mine"]),
])
def test_filters(people, tickets, client, params, expected):
    services.ticket_set_tags(ticket=tickets["unassigned"], tags=["vip"], by=people.agent_a)
    people.other_customer.language = "pl"
    people.other_customer.save()

    html = get(client, people.agent_a, "/app/", view="open", fragment="list", **params)

    assert listed(html, tickets) == expected


def test_a_customer_filter_and_a_malformed_one(people, tickets, client):
    html = get(client, people.agent_a, "/app/", view="open", fragment="list", customer=str(people.other_customer.pk))
    assert listed(html, tickets) == ["urgent"]
    assert get(client, people.agent_a, "/app/", view="open", fragment="list", customer="x; drop", team="a,b")


def test_an_unknown_view_falls_back_to_all_open(people, tickets, client):
    html = get(client, people.agent_a, "/app/", view="../../etc", fragment="list")
    assert listed(html, tickets) == ["urgent", "pending", "unassigned", "mine"]


# --- full-text search ---------------------------------------------------------------------------------

def test_search_matches_word_prefixes_in_messages_and_subjects(people, tickets, client):
    assert listed(get(client, people.agent_a, "/app/", view="all", q="smok offi", fragment="list"), tickets) == ["mine"]
    assert listed(get(client, people.agent_a, "/app/", view="all", q="refund", fragment="list"), tickets) == ["unassigned"]
    # Every word in the subject, or every word in one message.
    assert listed(get(client, people.agent_a, "/app/", view="all", q="office printer", fragment="list"), tickets) == []
    assert listed(get(client, people.agent_a, "/app/", view="all", q="printer fire", fragment="list"), tickets) == ["mine"]


def test_search_by_number(people, tickets, client):
    html = get(client, people.agent_a, "/app/", view="all", q=f"#{tickets['solved'].pk}", fragment="list")
    assert listed(html, tickets) == ["solved"]


def test_search_never_finds_another_teams_ticket(people, tickets, client):
    assert listed(get(client, people.agent_a, "/app/", view="all", q="confidential", fragment="list"), tickets) == []
    assert listed(get(client, people.supervisor, "/app/", view="all", q="confidential", fragment="list"), tickets) == ["other_team"]


def test_search_ignores_system_events_and_odd_input(people, tickets, client):
    services.ticket_set_status(ticket=tickets["unassigned"], status="open", by=people.agent_a)
    assert listed(get(client, people.agent_a, "/app/", view="all", q="status", fragment="list"), tickets) == []
    assert get(client, people.agent_a, "/app/", view="all", q="!!! & | ' :*", fragment="list")


def test_the_search_uses_the_full_text_indexes(people, tickets):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")  # pragma: no cover
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'tickets_%_fts'")
        assert {row[0] for row in cursor.fetchall()} == {"tickets_ticket_subject_fts", "tickets_entry_text_fts"}
    # The expressions the search compiles to are the indexed ones: with sequential scans off, the
    # plan uses both indexes (it could not, were the expressions different).
    from django.contrib.postgres.search import SearchQuery, SearchVector

    query = SearchQuery("smoke:*", search_type="raw", config="simple")
    subjects = Ticket.objects.annotate(fts=SearchVector("subject", config="simple")).filter(fts=query)
    texts = TimelineEntry.objects.annotate(fts=SearchVector("text", config="simple")).filter(fts=query)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = subjects.explain() + texts.explain()
        cursor.execute("SET LOCAL enable_seqscan = on")
    assert "tickets_ticket_subject_fts" in plans and "tickets_entry_text_fts" in plans
    assert list(texts.values_list("ticket", flat=True)) == [tickets["mine"].pk]


# --- paging and query counts ----------------------------------------------------------------------

def make_tickets(people, channel, n: int, vip) -> None:
    for i in range(n):
        ticket = TicketFactory(customer=CustomerFactory(), team=people.team_a, status="open", origin_channel=channel,
                               last_message_at=ago(100 + i))
        ticket.tags.add(vip)


def test_the_next_page_loads_as_rows_with_a_sentinel(people, api_channel, client):
    vip, _ = Tag.objects.get_or_create(name="vip")
    make_tickets(people, api_channel.channel, inbox.PAGE_SIZE + 5, vip)

    first = get(client, people.agent_a, "/app/", view="open")
    second = get(client, people.agent_a, "/app/", view="open", fragment="rows", page="2")
    refreshed = get(client, people.agent_a, "/app/", view="open", fragment="list", pages="2")

    assert first.count("data-ticket-id=") == inbox.PAGE_SIZE
    assert 'hx-trigger="revealed"' in first and "page=2" in first
    assert second.count("data-ticket-id=") == 5 and 'hx-trigger="revealed"' not in second
    assert refreshed.count("data-ticket-id=") == inbox.PAGE_SIZE + 5


def count_queries(client, url: str, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


def test_list_views_and_fragments_run_a_constant_number_of_queries(people, api_channel, client):
    vip, _ = Tag.objects.get_or_create(name="vip")
    client.force_login(people.agent_a)
    make_tickets(people, api_channel.channel, 3, vip)
    few = [count_queries(client, "/app/"), count_queries(client, "/app/", fragment="list", q="question"),
           count_queries(client, "/app/", fragment="views")]
    make_tickets(people, api_channel.channel, 40, vip)
    many = [count_queries(client, "/app/"), count_queries(client, "/app/", fragment="list", q="question"),
            count_queries(client, "/app/", fragment="views")]

    assert few == many


def test_the_ticket_page_runs_a_constant_number_of_queries(people, api_channel, client):
    vip, _ = Tag.objects.get_or_create(name="vip")
    ticket = TicketFactory(customer=people.customer, team=people.team_a, status="open", origin_channel=api_channel.channel,
                           last_message_at=ago(1))
    identity = people.customer.identities.get()

    def add(n: int) -> None:
        for i in range(n):
            EntryFactory(ticket=ticket, channel=api_channel.channel, identity=identity, author_customer=people.customer, text=f"m{i}")
            services.ticket_add_note(ticket=ticket, by=people.agent_a, text=f"note {i}")
            TicketFactory(customer=people.customer, team=people.team_a, status="open", last_message_at=ago(10 + i))
        make_tickets(people, api_channel.channel, n, vip)

    client.force_login(people.agent_a)
    add(2)
    few = [count_queries(client, f"/app/tickets/{ticket.pk}/"), count_queries(client, f"/app/tickets/{ticket.pk}/", fragment="pane")]
    add(15)
    many = [count_queries(client, f"/app/tickets/{ticket.pk}/"), count_queries(client, f"/app/tickets/{ticket.pk}/", fragment="pane")]

    assert few == many


def statements(client, url: str, **params) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_a_list_row_shows_what_the_ticket_is(people, tickets, client):
    ticket = tickets["mine"]
    Ticket.objects.filter(pk=ticket.pk).update(priority="urgent")
    ticket.tags.add(Tag.objects.create(name="zebra"), Tag.objects.create(name="apple"))
    people.agent_a.first_name, people.agent_a.last_name = "Ann", "Agent"
    people.agent_a.save()

    html = get(client, people.agent_a, "/app/", view="mine", fragment="list")
    row = html.split(f'data-ticket-id="{ticket.pk}"')[1].split("</tr>")[0]

    assert f'aria-label="Select #{ticket.pk}"' in row and f'value="{ticket.pk}"' in row
    assert f'href="/app/tickets/{ticket.pk}/?view=mine"' in row and f'hx-get="/app/tickets/{ticket.pk}/?fragment=pane"' in row
    assert '<span class="subject">Printer on fire</span>' in row
    assert 'title="API" aria-label="API"' in row and f'<span class="num">#{ticket.pk}</span>' in row
    assert '<span class="cust">Anna Kowalska</span>' in row
    assert '<span class="badge priority-urgent">Urgent</span>' in row and '<span class="badge status-open">Open</span>' in row
    assert '<span class="tag">apple</span><span class="tag">zebra</span>' in row
    assert '<span class="who">Ann Agent</span>' in row
    assert re.search(r'<time datetime="[0-9T:.+-]+" title="[^"]+">5\xa0minutes</time>', row), row
    assert " unread" in html.split(f'data-ticket-id="{ticket.pk}"')[1].split(">")[0]


def test_the_list_sorts_and_cuts_its_page_before_joining_the_rows(people, api_channel, client):
    """The page is chosen on the tickets table alone; only its rows are joined to customers etc.
    (joining first made PostgreSQL join every open ticket of the view to the customers)."""
    vip, _ = Tag.objects.get_or_create(name="vip")
    make_tickets(people, api_channel.channel, 5, vip)
    client.force_login(people.agent_a)

    sql = statements(client, "/app/", fragment="list")

    assert len(sql) == 5  # the session's user, its groups, its teams, the page, the page's tags
    page = next(s for s in sql if '"customers_customer"' in s)
    assert re.search(r'"tickets_ticket"\."id" IN \(SELECT .+ LIMIT 51\)', page), page


def test_the_ticket_page_reads_the_teams_once_and_the_customer_with_the_ticket(people, tickets, client):
    client.force_login(people.agent_a)

    sql = statements(client, f"/app/tickets/{tickets['mine'].pk}/")

    team_lists = [s for s in sql if s.startswith('SELECT "tickets_team"."id", "tickets_team"."name"')]
    assert len(team_lists) == 1, team_lists
    assert not [s for s in sql if s.startswith('SELECT "customers_customer"')]
    html = client.get(f"/app/tickets/{tickets['mine'].pk}/").content.decode()
    # The list's team filter still offers the agent's own teams only; the pane's select every team.
    assert f'<select name="team"><option value="">—</option><option value="{people.team_a.pk}">Support A</option></select>' in html
    assert f'<option value="{people.team_b.pk}">Support B</option>' in html
    assert "Anna Kowalska" in html


# --- ETags --------------------------------------------------------------------------------------

def test_unchanged_fragments_answer_304(people, tickets, client):
    client.force_login(people.agent_a)
    listing = client.get("/app/", {"fragment": "list"})
    assert client.get("/app/", {"fragment": "list"}, HTTP_IF_NONE_MATCH=listing["ETag"]).status_code == 304
    timeline = client.get(f"/app/tickets/{tickets['mine'].pk}/", {"fragment": "timeline"})
    assert client.get(f"/app/tickets/{tickets['mine'].pk}/", {"fragment": "timeline"},
                      HTTP_IF_NONE_MATCH=timeline["ETag"]).status_code == 304

    services.ticket_add_note(ticket=tickets["mine"], by=people.supervisor, text="new")

    changed = client.get(f"/app/tickets/{tickets['mine'].pk}/", {"fragment": "timeline"}, HTTP_IF_NONE_MATCH=timeline["ETag"])
    assert changed.status_code == 200 and "new" in changed.content.decode()


def test_the_etag_never_answers_another_teams_ticket(people, tickets, client):
    client.force_login(people.agent_a)
    assert client.get(f"/app/tickets/{tickets['other_team'].pk}/", {"fragment": "timeline"}, HTTP_IF_NONE_MATCH="*").status_code == 404


# --- unread markers ------------------------------------------------------------------------------

def test_a_ticket_is_unread_until_the_agent_opens_it(people, tickets, client):
    def row_class() -> str:
        html = get(client, people.agent_a, "/app/", view="mine", fragment="list")
        return html.split(f'data-ticket-id="{tickets["mine"].pk}"')[1].split(">")[0]

    assert "unread" in row_class()
    get(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/", fragment="pane")
    assert "unread" not in row_class()
    Ticket.objects.filter(pk=tickets["mine"].pk).update(last_message_at=timezone.now() + timedelta(seconds=5))
    assert "unread" in row_class()
    assert not TicketSeen.objects.filter(user=people.agent_b).exists()


# --- bulk changes --------------------------------------------------------------------------------

def test_bulk_assign_status_and_tag(people, tickets, client):
    client.force_login(people.supervisor)
    ids = f"{tickets['unassigned'].pk},{tickets['urgent'].pk}"

    client.post("/app/bulk/", {"ids": ids, "action": "assign", "value": str(people.agent_a.pk)})
    client.post("/app/bulk/", {"ids": ids, "action": "priority", "value": "high"})
    client.post("/app/bulk/", {"ids": ids, "action": "tag", "value": "refunds"})
    client.post("/app/bulk/", {"ids": ids, "action": "team", "value": str(people.team_b.pk)})
    response = client.post("/app/bulk/", {"ids": ids, "action": "status", "value": "pending", "state": "view=mine"})

    assert response.status_code == 302 and response["Location"] == "/app/?view=mine"
    for key in ("unassigned", "urgent"):
        t = Ticket.objects.get(pk=tickets[key].pk)
        assert (t.assignee, t.priority, t.status, t.team, list(t.tags.values_list("name", flat=True))) == (
            people.agent_a, "high", "pending", people.team_b, ["refunds"])


def test_bulk_is_all_or_nothing(people, tickets, client):
    client.force_login(people.agent_a)
    ids = f"{tickets['unassigned'].pk},{tickets['urgent'].pk}"

    response = client.post("/app/bulk/", {"ids": ids, "action": "assign", "value": str(people.supervisor.pk)})

    assert flash(response) == ["Only supervisors assign tickets to someone else."]
    assert not Ticket.objects.filter(assignee__isnull=False).exclude(pk=tickets["mine"].pk).exists()


def test_bulk_on_another_teams_ticket_is_404_and_changes_nothing(people, tickets, client):
    client.force_login(people.agent_a)
    ids = f"{tickets['unassigned'].pk},{tickets['other_team'].pk}"

    assert client.post("/app/bulk/", {"ids": ids, "action": "status", "value": "solved"}).status_code == 404
    assert Ticket.objects.get(pk=tickets["unassigned"].pk).status == "new"
    assert Ticket.objects.get(pk=tickets["other_team"].pk).status == "open"


@pytest.mark.parametrize("data", [
    {"ids": "", "action": "status", "value": "solved"},
    {"ids": "1", "action": "explode", "value": "x"},
    {"ids": "1", "action": "status", "value": "exploded"},
    {"ids": "1", "action": "assign", "value": "999999"},
])
def test_bulk_refuses_bad_input(people, tickets, client, data):
    client.force_login(people.supervisor)
    data = {**data, "ids": data["ids"] and str(tickets["unassigned"].pk)}
    response = client.post("/app/bulk/", data)
    assert response.status_code == 302 and flash(response)
    assert Ticket.objects.get(pk=tickets["unassigned"].pk).status == "new"


# --- bulk merge ----------------------------------------------------------------------------------

@pytest.fixture
def annas(people, tickets):
    """Three open tickets of Anna in team A, oldest first, each with a message of its own."""
    made = [tickets["mine"], tickets["unassigned"], tickets["pending"]]
    for i, ticket in enumerate(made):
        Ticket.objects.filter(pk=ticket.pk).update(created_at=ago(300 - i * 100))
        EntryFactory(ticket=ticket, text=f"Message number {i}", author_customer=people.customer)
    return [Ticket.objects.get(pk=t.pk) for t in made]


def ids_of(*tickets) -> str:
    return ",".join(str(t.pk) for t in tickets)


def test_bulk_merge_asks_which_ticket_survives_with_the_oldest_preselected(people, annas, client):
    client.force_login(people.agent_a)

    response = client.post("/app/bulk/", {"ids": ids_of(annas[2], annas[0], annas[1]), "action": "merge", "state": "view=open"})
    assert response.status_code == 302 and response["Location"].startswith("/app/bulk/merge/?")
    page = client.get(response["Location"])
    dialog = client.get("/app/bulk/merge/", {"ids": ids_of(*annas)}, HTTP_HX_REQUEST="true")

    assert page.status_code == 200 and "<html" in page.content.decode()
    html = dialog.content.decode()
    assert dialog.status_code == 200 and "<html" not in html
    assert html.count('name="into"') == 3
    assert f'value="{annas[0].pk}" checked' in html
    assert "Merge 3 tickets" in html and "Keep which ticket?" in html
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


def test_bulk_merge_combines_the_timelines_into_the_chosen_ticket(people, annas, client):
    client.force_login(people.agent_a)
    survivor = annas[1]

    response = client.post("/app/bulk/merge/", {"ids": ids_of(*annas), "into": str(survivor.pk), "state": "view=mine"})

    assert response.status_code == 302 and response["Location"] == "/app/?view=mine"
    assert flash(response) == [f"2 tickets were merged into #{survivor.pk}."]
    texts = set(TimelineEntry.objects.filter(ticket=survivor, kind="message").values_list("text", flat=True))
    assert {"Message number 0", "Message number 1", "Message number 2", "Smoke everywhere in the office"} <= texts
    for other, was in ((annas[0], "open"), (annas[2], "pending")):
        other.refresh_from_db()
        assert (other.status, other.merged_into_id) == ("closed", survivor.pk)
        assert other.entries.get(kind="event").data == {"action": "merged_into", "ticket": survivor.pk, "from": was}
    merged_in = sorted(e.data["ticket"] for e in survivor.entries.filter(kind="event", data__action="merged_in"))
    assert merged_in == sorted([annas[0].pk, annas[2].pk])


def test_bulk_merge_from_the_dialog_answers_a_fragment_and_publishes_live_hints(people, annas, client, django_capture_on_commit_callbacks):
    client.force_login(people.agent_a)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/app/bulk/merge/", {"ids": ids_of(*annas), "into": str(annas[0].pk)}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200 and "data-merge-done" in html and f'data-into="{annas[0].pk}"' in html
    assert "2 tickets were merged into" in html
    assert callbacks  # the live hints go out after commit, as for a single merge
    assert set(Ticket.objects.filter(merged_into=annas[0]).values_list("pk", flat=True)) == {annas[1].pk, annas[2].pk}


@pytest.mark.parametrize("case", ["two_customers", "one_ticket", "closed", "survivor_not_selected", "no_ids"])
def test_bulk_merge_refusals_change_nothing(people, tickets, annas, client, case):
    client.force_login(people.agent_a)
    Ticket.objects.filter(pk=tickets["solved"].pk).update(status="closed")
    selection, into, message = {
        "two_customers": ([annas[0], tickets["urgent"]], annas[0], "Only tickets of the same customer can be merged."),
        "one_ticket": ([annas[0]], annas[0], "Select at least two tickets to merge."),
        "closed": ([annas[0], tickets["solved"]], annas[0], "A closed or already merged ticket cannot be merged."),
        "survivor_not_selected": ([annas[0], annas[1]], annas[2], "Choose the ticket to keep."),
        "no_ids": ([], annas[0], "Select between 1 and 500 tickets."),
    }[case]
    before = list(TimelineEntry.objects.order_by("pk").values_list("pk", "ticket_id"))

    dialog = client.get("/app/bulk/merge/", {"ids": ids_of(*selection)}, HTTP_HX_REQUEST="true")
    posted = client.post("/app/bulk/merge/", {"ids": ids_of(*selection), "into": str(into.pk)}, HTTP_HX_REQUEST="true")
    plain = client.post("/app/bulk/merge/", {"ids": ids_of(*selection), "into": str(into.pk), "state": "view=open"})

    if case != "survivor_not_selected":  # the confirmation step itself is fine there
        assert dialog.status_code == 400 and message in dialog.content.decode() and 'name="into"' not in dialog.content.decode()
    assert posted.status_code == 400 and message in posted.content.decode()
    assert plain.status_code == 302 and flash(plain) == [message]
    assert list(TimelineEntry.objects.order_by("pk").values_list("pk", "ticket_id")) == before
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


def test_bulk_merge_of_a_ticket_the_agent_cannot_see_is_404_and_changes_nothing(people, tickets, annas, client):
    """Security: tickets["other_team"] is Anna's too, but in team B; agent A may not see it."""
    client.force_login(people.agent_a)
    hidden = tickets["other_team"]

    assert client.get("/app/bulk/merge/", {"ids": ids_of(annas[0], hidden)}).status_code == 404
    assert client.get("/app/bulk/merge/", {"ids": ids_of(annas[0], hidden)}, HTTP_HX_REQUEST="true").status_code == 404
    assert client.post("/app/bulk/merge/", {"ids": ids_of(annas[0], hidden), "into": str(annas[0].pk)}).status_code == 404
    assert client.post("/app/bulk/merge/", {"ids": ids_of(annas[0], hidden), "into": str(hidden.pk)}).status_code == 404

    hidden.refresh_from_db()
    assert (hidden.status, hidden.merged_into_id) == ("open", None)
    assert hidden.entries.filter(text="Team B confidential words").exists()
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()
    client.force_login(people.agent_b)  # and the other way round
    assert client.post("/app/bulk/merge/", {"ids": ids_of(annas[0], hidden), "into": str(hidden.pk)}).status_code == 404


def test_bulk_merge_needs_a_signed_in_agent(people, annas, client):
    assert client.get("/app/bulk/merge/", {"ids": ids_of(*annas)})["Location"].startswith("/accounts/login/")
    response = client.post("/app/bulk/merge/", {"ids": ids_of(*annas), "into": str(annas[0].pk)})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


def test_the_merge_confirmation_runs_a_constant_number_of_queries(people, api_channel, client):
    client.force_login(people.agent_a)
    made = [TicketFactory(customer=people.customer, team=people.team_a, status="open", origin_channel=api_channel.channel)
            for _ in range(12)]

    few = count_queries(client, "/app/bulk/merge/", ids=ids_of(*made[:2]))
    many = count_queries(client, "/app/bulk/merge/", ids=ids_of(*made))

    assert few == many


def test_each_merged_ticket_costs_the_same_number_of_queries(people, api_channel, client):
    client.force_login(people.agent_a)

    def cost(n: int) -> int:
        made = [TicketFactory(customer=people.customer, team=people.team_a, status="open") for _ in range(n)]
        with CaptureQueriesContext(connection) as queries:
            client.post("/app/bulk/merge/", {"ids": ids_of(*made), "into": str(made[0].pk)})
        assert Ticket.objects.filter(merged_into=made[0]).count() == n - 1
        return len(queries)

    two, three, five = cost(2), cost(3), cost(5)
    assert three - two == (five - three) // 2 and (five - three) % 2 == 0


# --- the composer --------------------------------------------------------------------------------

def test_the_composer_offers_every_reachable_identity_and_preselects_the_last_one(people, tickets, client, api_channel):
    IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    html = get(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/", fragment="pane")

    assert "→ anna@example.pl" in html and "→ +48601234567" in html
    email = people.customer.identities.get(kind="email")
    assert f'value="{api_channel.channel.pk}:{email.pk}" data-kind="api" selected' in html
    assert "data-composer-text" in html


def test_a_reply_goes_to_the_chosen_identity_and_can_set_the_status(people, tickets, client, api_channel):
    phone = IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    client.force_login(people.agent_a)

    client.post(f"/app/tickets/{tickets['mine'].pk}/reply/", {
        "kind": "reply", "text": "Calling you", "target": f"{api_channel.channel.pk}:{phone.pk}", "then_status": "solved",
    })

    reply = TimelineEntry.objects.get(ticket=tickets["mine"], direction="out")
    assert (reply.identity, reply.channel) == (phone, api_channel.channel)
    assert Ticket.objects.get(pk=tickets["mine"].pk).status == "solved"


def test_a_reply_to_someone_elses_identity_is_refused(people, tickets, client, api_channel):
    boris = people.other_customer.identities.get()
    client.force_login(people.agent_a)

    response = client.post(f"/app/tickets/{tickets['mine'].pk}/reply/", {
        "kind": "reply", "text": "Hi", "target": f"{api_channel.channel.pk}:{boris.pk}",
    })

    assert flash(response) == ["Choose where the reply goes."]
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_the_htmx_composer_answers_with_the_pane(people, tickets, client):
    client.force_login(people.agent_a)
    response = client.post(f"/app/tickets/{tickets['mine'].pk}/reply/", {"kind": "note", "text": "Checked"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert "data-pane" in html and "Checked" in html and "<html" not in html


def test_a_message_that_arrived_while_writing_stops_the_send_until_confirmed(people, tickets, client, api_channel):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)
    seen = ticket.entries.order_by("-pk").first().pk
    message_ingest(channel=api_channel.channel, message=NormalizedMessage(
        provider_message_id="late-1", sender=[identities.claim("email", "anna@example.pl")], text="Actually, never mind",
        thread_keys=[f"ticket:{ticket.pk}"],
    ))
    assert ticket.entries.filter(pk__gt=seen).exists()

    held = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "reply", "text": "We send a technician", "last_entry": seen})

    assert held.status_code == 409
    html = held.content.decode()
    assert "Something new arrived on this ticket" in html
    assert "We send a technician" in html and 'name="confirm" value="True"' in html
    assert not ticket.entries.filter(direction="out").exists()

    sent = client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "reply", "text": "We send a technician",
                                                              "last_entry": seen, "confirm": "True"})
    assert sent.status_code == 302
    assert ticket.entries.filter(direction="out", text="We send a technician").exists()


def test_my_own_notes_do_not_count_as_new_activity(people, tickets, client):
    ticket = tickets["mine"]
    client.force_login(people.agent_a)
    seen = ticket.entries.order_by("-pk").first().pk
    services.ticket_add_note(ticket=ticket, by=people.agent_a, text="my own")

    assert client.post(f"/app/tickets/{ticket.pk}/reply/", {"kind": "note", "text": "x", "last_entry": seen}).status_code == 302
    assert ticket.entries.filter(kind="note", text="x").exists()


# --- canned responses -----------------------------------------------------------------------------

def test_canned_responses_are_found_and_filled_in(people, tickets, client):
    CannedResponse.objects.create(title="Greeting", body="Hello {{customer.first_name}}, {{agent.name}} here about #{{ticket.number}}.")
    CannedResponse.objects.create(owner=people.agent_b, title="Greeting of B", body="secret of B")
    people.agent_a.first_name, people.agent_a.last_name = "Ewa", "Nowak"
    people.agent_a.save()

    html = get(client, people.agent_a, "/app/canned/", ticket=str(tickets["mine"].pk), q="greet")

    assert f"Hello Anna, Ewa Nowak here about #{tickets['mine'].pk}." in html
    assert "secret of B" not in html


def test_canned_variables_are_plain_text(people, tickets):
    people.customer.display_name = "{{agent.name}} <b>"
    people.customer.save()
    ticket = Ticket.objects.select_related("customer").get(pk=tickets["mine"].pk)
    assert services.canned_render("Hi {{customer.name}} {% debug %}", ticket=ticket, agent=people.agent_a) == "Hi {{agent.name}} <b> {% debug %}"


def test_canned_search_for_another_teams_ticket_is_404(people, tickets, client):
    client.force_login(people.agent_a)
    assert client.get("/app/canned/", {"ticket": tickets["other_team"].pk}).status_code == 404


def test_agents_keep_personal_canned_responses_and_supervisors_shared_ones(people, client):
    client.force_login(people.agent_a)
    client.post("/app/canned/manage/", {"title": "Mine", "body": "my text"})
    response = client.post("/app/canned/manage/", {"title": "Everyone", "body": "x", "shared": "on"})
    assert "Only supervisors create shared canned responses." in flash(response)
    client.force_login(people.supervisor)
    client.post("/app/canned/manage/", {"title": "Everyone", "body": "shared text", "shared": "on"})

    assert list(CannedResponse.objects.values_list("title", "owner")) == [("Everyone", None), ("Mine", people.agent_a.pk)]
    mine = CannedResponse.objects.get(title="Mine")
    assert client.post(f"/app/canned/{mine.pk}/delete/").status_code == 404  # the supervisor does not see it
    client.force_login(people.agent_a)
    shared = CannedResponse.objects.get(title="Everyone")
    client.post(f"/app/canned/{shared.pk}/delete/")
    assert CannedResponse.objects.filter(pk=shared.pk).exists()
    client.post(f"/app/canned/{mine.pk}/delete/")
    assert not CannedResponse.objects.filter(pk=mine.pk).exists()


# --- mentions ------------------------------------------------------------------------------------

def test_a_mention_reaches_an_agent_who_may_see_the_ticket_only(people, tickets, client):
    client.force_login(people.agent_a)
    client.post(f"/app/tickets/{tickets['mine'].pk}/reply/", {"kind": "note", "text": "@supervisor and @agent_b, look. mail@agent_b"})

    assert list(Mention.objects.values_list("user__username", flat=True)) == ["supervisor"]
    counts = inbox.view_counts(people.supervisor)
    assert counts["mentions"] == 1
    html = get(client, people.supervisor, "/app/", view="mentions")
    assert "Printer on fire" in html and 'title="Unread mentions">1<' in html

    get(client, people.supervisor, f"/app/tickets/{tickets['mine'].pk}/", fragment="pane")
    assert Mention.objects.get().seen_at is not None
    assert 'title="Unread mentions"' not in get(client, people.supervisor, "/app/", fragment="views")


# --- merge and split --------------------------------------------------------------------------

def test_merging_two_tickets_of_one_customer_combines_the_timelines(people, tickets, client):
    source, into = tickets["unassigned"], tickets["mine"]
    EntryFactory(ticket=source, text="Where is my refund", author_customer=people.customer)
    client.force_login(people.agent_a)

    client.post(f"/app/tickets/{source.pk}/merge/", {"into": f"#{into.pk}"})

    source.refresh_from_db()
    assert (source.status, source.merged_into) == ("closed", into)
    texts = list(into.entries.values_list("text", flat=True))
    assert "Where is my refund" in texts and "Smoke everywhere in the office" in texts
    assert into.entries.filter(kind="event", data__action="merged_in").exists()
    html = get(client, people.agent_a, f"/app/tickets/{source.pk}/", fragment="pane")
    assert f"Merged into #{into.pk}" in html


@pytest.mark.parametrize("other", ["urgent", "other_team", "mine"])
def test_merge_refusals(people, tickets, client, other):
    client.force_login(people.agent_a)
    target = tickets["mine"] if other == "mine" else tickets[other]
    response = client.post(f"/app/tickets/{tickets['mine'].pk}/merge/", {"into": str(target.pk)})

    assert flash(response)
    assert Ticket.objects.get(pk=tickets["mine"].pk).merged_into is None
    assert Ticket.objects.get(pk=tickets["mine"].pk).status == "open"


def test_splitting_a_message_into_a_new_ticket(people, tickets, client):
    ticket = tickets["mine"]
    second = EntryFactory(ticket=ticket, text="Also, my invoice is wrong\nmore", author_customer=people.customer)
    client.force_login(people.agent_a)

    client.post(f"/app/tickets/{ticket.pk}/messages/{second.pk}/split/")

    second.refresh_from_db()
    new = second.ticket
    assert new.pk != ticket.pk
    assert (new.subject, new.customer, new.team) == ("Also, my invoice is wrong", people.customer, people.team_a)
    assert ticket.entries.filter(kind="event", data__action="split_to").exists()


def test_the_only_message_cannot_be_split(people, tickets, client):
    only = tickets["mine"].entries.get()
    client.force_login(people.agent_a)
    response = client.post(f"/app/tickets/{tickets['mine'].pk}/messages/{only.pk}/split/")
    assert flash(response) == ["The ticket's only message cannot be split off."]
    assert Ticket.objects.count() == len(tickets)


# --- the customer sidebar -------------------------------------------------------------------------

def test_the_sidebar_shows_identities_previous_tickets_and_attributes(people, tickets, client):
    people.customer.attributes = {"plan": "gold"}
    people.customer.save()
    html = get(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/", fragment="pane")

    assert "anna@example.pl" in html and "plan" in html and "gold" in html
    assert "Refund please" in html and "Thanks a lot" in html
    assert "Secret of team B" not in html


def test_editing_custom_attributes(people, tickets, client):
    people.customer.attributes = {"plan": "gold", "old": "x"}
    people.customer.save()
    client.force_login(people.agent_a)

    client.post(f"/app/customers/{people.customer.pk}/attributes/", {"attributes": "plan = platinum\nold=\nbad line\nnew=1"})

    people.customer.refresh_from_db()
    assert people.customer.attributes == {"plan": "platinum", "new": "1"}


def test_a_duplicate_is_merged_with_one_click_and_can_be_undone(people, tickets, client):
    twin = CustomerFactory(display_name="Anna Kowalska")
    IdentityFactory(customer=twin, kind="phone", value="+48600000001")
    twin_ticket = TicketFactory(customer=twin, team=people.team_a, status="open", subject="From the phone")
    MergeSuggestion.objects.create(customer=people.customer, other=twin, reason="same name")
    client.force_login(people.agent_a)

    html = get(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/", fragment="pane")
    assert "Possible duplicates" in html and "same name" in html

    client.post(f"/app/customers/{people.customer.pk}/merge/", {"other": twin.pk})
    assert Ticket.objects.get(pk=twin_ticket.pk).customer == people.customer
    html = get(client, people.agent_a, f"/app/tickets/{tickets['mine'].pk}/", fragment="pane")
    assert "Undo merge" in html and "From the phone" in html

    merge = CustomerMerge.objects.get()
    client.post(f"/app/customer-merges/{merge.pk}/undo/")
    assert Ticket.objects.get(pk=twin_ticket.pk).customer == twin


def test_an_agent_cannot_touch_a_customer_without_a_visible_ticket(people, tickets, client):
    stranger = CustomerFactory(display_name="Stranger")
    TicketFactory(customer=stranger, team=people.team_b, status="open")
    client.force_login(people.agent_a)

    assert client.post(f"/app/customers/{stranger.pk}/attributes/", {"attributes": "a=b"}).status_code == 404
    assert client.post(f"/app/customers/{people.customer.pk}/merge/", {"other": stranger.pk}).status_code == 404
    stranger.refresh_from_db()
    assert stranger.attributes == {} and stranger.merged_into is None


# --- presence and the board ------------------------------------------------------------------------

def test_presence_by_hand_holds_against_activity(people, client):
    client.force_login(people.agent_a)
    client.post("/app/presence/", {"status": "away"})
    client.post("/app/presence/", {"status": "online", "auto": "1"})

    presence = AgentPresence.objects.get(user=people.agent_a)
    assert (presence.status, presence.manual) == ("away", True)
    client.post("/app/presence/", {"status": "online"})
    assert AgentPresence.objects.get(user=people.agent_a).status == "online"
    assert client.post("/app/presence/", {"status": "sleeping"}).status_code == 400


def test_the_queue_board_is_for_supervisors(people, tickets, client):
    client.force_login(people.agent_a)
    client.post("/app/presence/", {"status": "online"})
    assert client.get("/app/board/").status_code == 404

    html = get(client, people.supervisor, "/app/board/")
    team_a = html.split("Support A")[1].split("</section>")[0]
    assert '<dd data-open>4</dd>' in team_a
    assert ">3</a></dd>" in team_a  # unassigned
    assert "presence-online" in team_a and "1 open ticket" in team_a


def test_the_board_costs_the_same_queries_for_more_teams_and_agents(people, tickets, client):
    from tests.factories import TeamFactory, UserFactory

    client.force_login(people.supervisor)
    few = count_queries(client, "/app/board/")
    for i in range(5):
        team = TeamFactory(name=f"Extra {i}")
        UserFactory(username=f"extra{i}", role="agent", teams=[team])
    assert count_queries(client, "/app/board/") == few


def test_the_embedded_mode_search_fallback_finds_the_same_tickets(people, tickets, monkeypatch):
    # SQLite has no full-text search here: the fallback (LIKE on the whole term) runs on any database.
    class NotPostgres:
        vendor = "sqlite"

    monkeypatch.setattr(inbox, "connection", NotPostgres())
    found = inbox.ticket_list(people.agent_a, "all", {"q": "smoke every"})
    assert list(found) == [tickets["mine"]]
    assert list(inbox.ticket_list(people.agent_a, "all", {"q": "confidential"})) == []


def test_saved_views_personal_and_shared_in_folders(people, tickets, client):
    from tickets.models import SavedView

    client.force_login(people.agent_a)
    client.post("/app/saved-views/", {"name": "Urgent ones", "folder": "Triage",
                                      "query": "view=open&priority=urgent&evil=1&view=bogus"})
    refused = client.post("/app/saved-views/", {"name": "For all", "query": "view=open", "shared": "on"})
    assert "Only supervisors create shared views." in flash(refused)
    client.force_login(people.supervisor)
    client.post("/app/saved-views/", {"name": "Pending everywhere", "query": "view=pending", "shared": "on"})

    mine = SavedView.objects.get(name="Urgent ones")
    assert (mine.owner, mine.folder, mine.query) == (people.agent_a, "Triage", "view=open&priority=urgent")
    html = get(client, people.agent_a, "/app/", fragment="views")
    assert "Urgent ones" in html and "Triage" in html and "Pending everywhere" in html
    assert "Urgent ones" not in get(client, people.agent_b, "/app/", fragment="views")
    assert listed(get(client, people.agent_a, "/app/?" + mine.query + "&fragment=list"), tickets) == ["urgent"]

    client.force_login(people.agent_a)
    shared = SavedView.objects.get(name="Pending everywhere")
    client.post(f"/app/saved-views/{shared.pk}/delete/")
    assert SavedView.objects.filter(pk=shared.pk).exists()
    client.force_login(people.agent_b)
    assert client.post(f"/app/saved-views/{mine.pk}/delete/").status_code == 404
    client.force_login(people.agent_a)
    views = client.get("/app/", {"fragment": "views"})
    assert client.get("/app/", {"fragment": "views"}, HTTP_IF_NONE_MATCH=views["ETag"]).status_code == 304
    deleted = client.post(f"/app/saved-views/{mine.pk}/delete/", HTTP_HX_REQUEST="true")
    assert deleted.status_code == 204 and deleted["HX-Refresh"] == "true"
    assert not SavedView.objects.filter(pk=mine.pk).exists()


INDEXED_VECTOR = "to_tsvector('simple'::regconfig, COALESCE("  # the GIN indexes' expression (migration 0003)


def test_a_search_listed_newest_first_checks_the_newest_tickets_first_and_gives_the_same_page(
    people, monkeypatch
):
    # PostgreSQL: a common word is looked for ticket by ticket among the newest tickets, instead of
    # fetching every matching entry through the index; the page must be the whole search's page.
    monkeypatch.setattr(inbox, "PAGE_SIZE", 3)
    monkeypatch.setattr(inbox, "SEARCH_RECENT_TICKETS", 12)
    now = timezone.now()
    made = []
    for i in range(30):
        ticket = TicketFactory(subject=f"Case {i}", customer=people.customer, team=people.team_a, status="open",
                               last_message_at=now - timedelta(minutes=i))
        EntryFactory(ticket=ticket, text="my parcel is late" if i % 2 else "hello there")
        if i == 25:
            EntryFactory(ticket=ticket, text="a rare zebra")
        if i == 3:
            EntryFactory(ticket=ticket, kind=TimelineEntry.Kind.EVENT, text="parcel event only")
        made.append(ticket)
    made[4].subject = "Parcel question"
    made[4].save(update_fields=["subject"])

    def page(term: str, *, recent_first: bool) -> tuple[list[int], bool, list[str]]:
        queryset = inbox.ticket_list(people.agent_a, "all", {"q": term})
        if not recent_first:
            queryset.recent_first = None
        with CaptureQueriesContext(connection) as queries:
            rows, more = inbox.page_of(queryset, 1, pages=2, user=people.agent_a)
        return [t.pk for t in rows], more, [q["sql"] for q in queries]

    # A common word: the newest tickets answer (odd tickets and the one with the subject).
    rows, more, sql = page("parc", recent_first=True)
    assert (rows, more) == page("parc", recent_first=False)[:2]
    assert rows == [made[i].pk for i in (1, 3, 4, 5, 7, 9)] and more
    assert any("e.ticket_id = r.pk" in s for s in sql)  # looked for ticket by ticket
    assert not any(INDEXED_VECTOR in s for s in sql)  # and not through the index
    # A rare word: not enough among the newest, so the whole view is searched the usual way.
    rows, more, sql = page("zebra", recent_first=True)
    assert rows == [made[25].pk] and not more
    assert any(INDEXED_VECTOR in s for s in sql)
    # A ticket number and a word found nowhere.
    assert page(f"#{made[20].pk}", recent_first=True)[0] == [made[20].pk]
    assert page("nothinglikethis", recent_first=True)[0] == []
    # Another team's tickets are never candidates.
    other = TicketFactory(subject="Parcel elsewhere", customer=people.customer, team=people.team_b, status="open",
                          last_message_at=now)
    assert other.pk not in page("parcel", recent_first=True)[0]
