"""REST API: /api/v1/tickets/ (filters, visibility, PATCH, timeline), /teams/ and /users/."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omnicenter.models import User
from tests.factories import (
    CustomerFactory,
    EntryFactory,
    IdentityFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
    make_channel,
)
from tickets import services
from tickets.models import Tag, Team, Ticket, TimelineEntry

TICKETS = "/api/v1/tickets/"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [t["id"] for t in response.json()["results"]]


def messages_url(ticket) -> str:
    return f"{TICKETS}{ticket.pk}/messages/"


@pytest.fixture
def board(people, api_channel):
    """Four tickets in both teams with different states, newest message first in this order."""
    chat, _ = make_channel(name="Chat API", default_team=people.team_a)
    a_open = TicketFactory(subject="Printer on fire", customer=people.customer, team=people.team_a, status="open",
                           priority="urgent", assignee=people.agent_a, origin_channel=api_channel.channel,
                           last_message_at=ago(1))
    a_new = TicketFactory(subject="Refund please", customer=people.other_customer, team=people.team_a, status="new",
                          last_message_at=ago(2), origin_channel=chat)
    a_solved = TicketFactory(subject="Thanks!", customer=people.customer, team=people.team_a, status="solved",
                             priority="low", last_message_at=ago(3))
    b_pending = TicketFactory(subject="Invoice copy", customer=people.other_customer, team=people.team_b,
                              status="pending", assignee=people.agent_b, last_message_at=ago(4))
    EntryFactory(ticket=a_open, channel=api_channel.channel, text="The printer makes smoke")
    EntryFactory(ticket=a_new, channel=chat, text="I want my money back, order 4471")
    EntryFactory(ticket=a_solved, kind=TimelineEntry.Kind.NOTE, direction="", text="internal: smoke detector")
    EntryFactory(ticket=b_pending, text="Please send the invoice")
    return {"a_open": a_open, "a_new": a_new, "a_solved": a_solved, "b_pending": b_pending, "chat": chat}


# --- listing and filters --------------------------------------------------------------------------

def test_a_supervisor_lists_every_ticket_newest_message_first(people, board, api_as):
    response = api_as(people.supervisor).get(TICKETS)

    assert ids(response) == [board[k].pk for k in ("a_open", "a_new", "a_solved", "b_pending")]
    first = response.json()["results"][0]
    assert first["number"] == board["a_open"].pk
    assert first["customer"] == {"id": people.customer.pk, "display_name": "Anna Kowalska"}
    assert first["origin_channel"]["kind"] == "api"


def test_an_agent_lists_only_their_teams_tickets(people, board, api_as):
    assert set(ids(api_as(people.agent_a).get(TICKETS))) == {board[k].pk for k in ("a_open", "a_new", "a_solved")}
    assert ids(api_as(people.agent_b).get(TICKETS)) == [board["b_pending"].pk]


def test_an_agent_also_sees_a_ticket_of_another_team_assigned_to_them(people, board, api_as):
    services.ticket_assign(ticket=board["b_pending"], agent=people.agent_a, by=people.supervisor)

    assert board["b_pending"].pk in ids(api_as(people.agent_a).get(TICKETS))


def test_an_agent_of_another_team_gets_404_for_a_ticket(people, board, api_as):
    api = api_as(people.agent_b)
    ticket = board["a_open"]

    assert api.get(f"{TICKETS}{ticket.pk}/").status_code == 404
    assert api.get(messages_url(ticket)).status_code == 404
    assert api.patch(f"{TICKETS}{ticket.pk}/", {"status": "solved"}, format="json").status_code == 404
    assert api.post(messages_url(ticket), {"kind": "note", "text": "hi"}, format="json").status_code == 404
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    assert api.get(f"{TICKETS}999999/").status_code == 404


def test_anonymous_and_role_less_users_cannot_use_the_api(people, board, api_as, client):
    assert client.get(TICKETS).status_code == 401
    assert api_as(UserFactory(username="nobody")).get(TICKETS).status_code == 403


@pytest.mark.parametrize(("query", "expected"), [
    ("status=open", ["a_open"]),
    ("status=new,pending", ["a_new", "b_pending"]),
    ("priority=urgent", ["a_open"]),
    ("priority=low,urgent", ["a_open", "a_solved"]),
    ("assignee=none", ["a_new", "a_solved"]),
    ("q=printer", ["a_open"]),
    ("q=REFUND", ["a_new"]),
    ("q=order 4471", ["a_new"]),
    ("q=invoice", ["b_pending"]),
    ("q=smoke", ["a_open", "a_solved"]),
])
def test_ticket_filters(people, board, api_as, query, expected):
    response = api_as(people.supervisor).get(f"{TICKETS}?{query}")

    assert ids(response) == [board[k].pk for k in expected]


def test_filter_by_team_customer_assignee_and_channel(people, board, api_as):
    api = api_as(people.supervisor)

    assert ids(api.get(f"{TICKETS}?team={people.team_b.pk}")) == [board["b_pending"].pk]
    assert ids(api.get(f"{TICKETS}?team={people.team_a.pk},{people.team_b.pk}")) == ids(api.get(TICKETS))
    assert ids(api.get(f"{TICKETS}?customer={people.other_customer.pk}")) == [board["a_new"].pk, board["b_pending"].pk]
    assert ids(api.get(f"{TICKETS}?assignee={people.agent_b.pk}")) == [board["b_pending"].pk]
    assert ids(api.get(f"{TICKETS}?channel={board['chat'].key}")) == [board["a_new"].pk]
    assert ids(api.get(f"{TICKETS}?channel=no-such-channel")) == []


def test_filter_assignee_me_is_the_caller(people, board, api_as):
    assert ids(api_as(people.agent_a).get(f"{TICKETS}?assignee=me")) == [board["a_open"].pk]
    assert ids(api_as(people.supervisor).get(f"{TICKETS}?assignee=me")) == []


def test_search_by_ticket_number(people, board, api_as):
    ticket = board["a_solved"]

    assert ids(api_as(people.supervisor).get(f"{TICKETS}?q=%23{ticket.pk}")) == [ticket.pk]
    assert ticket.pk in ids(api_as(people.supervisor).get(f"{TICKETS}?q={ticket.pk}"))


def test_search_never_reveals_another_teams_ticket(people, board, api_as):
    assert ids(api_as(people.agent_a).get(f"{TICKETS}?q=invoice")) == []
    assert ids(api_as(people.agent_a).get(f"{TICKETS}?q=%23{board['b_pending'].pk}")) == []


def test_lists_are_paginated(people, board, api_as):
    api = api_as(people.supervisor)

    first = api.get(f"{TICKETS}?page_size=3").json()
    second = api.get(first["next"]).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 4
    assert len(first["results"]) == 3
    assert first["previous"] is None
    assert [t["id"] for t in second["results"]] == [board["b_pending"].pk]
    assert second["next"] is None
    assert second["previous"] is not None


# --- PATCH ----------------------------------------------------------------------------------------

def patch(api, ticket, body):
    return api.patch(f"{TICKETS}{ticket.pk}/", body, format="json")


def test_an_agent_changes_status_and_tags_and_takes_the_ticket(people, board, api_as):
    ticket = board["a_new"]

    response = patch(api_as(people.agent_a), ticket, {"status": "pending", "tags": ["refund", "vip"], "assignee": people.agent_a.pk})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["tags"], body["assignee"]) == ("pending", ["refund", "vip"], people.agent_a.pk)
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    assert ticket.version == body["version"]


@pytest.mark.parametrize("field", ["priority", "team", "assignee"])
def test_an_agent_gets_403_with_a_readable_reason(people, board, api_as, field):
    value = {"priority": "urgent", "team": people.team_b.pk, "assignee": people.agent_b.pk}[field]

    response = patch(api_as(people.agent_a), board["a_new"], {field: value})

    assert response.status_code == 403
    assert "supervisors" in response.json()["detail"].lower()
    ticket = Ticket.objects.get(pk=board["a_new"].pk)
    assert (ticket.priority, ticket.team, ticket.assignee) == ("normal", people.team_a, None)


def test_a_refused_patch_changes_nothing_at_all(people, board, api_as):
    ticket = board["a_new"]
    version = ticket.version

    response = patch(api_as(people.agent_a), ticket, {"assignee": people.agent_a.pk, "priority": "high", "status": "open"})

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.priority, ticket.status, ticket.version) == (None, "normal", "new", version)
    assert not ticket.entries.filter(kind=TimelineEntry.Kind.EVENT).exists()


def test_a_supervisor_sets_priority_team_and_assignee(people, board, api_as):
    ticket = board["a_new"]

    response = patch(api_as(people.supervisor), ticket, {"priority": "high", "team": people.team_b.pk, "assignee": people.agent_b.pk})

    assert response.status_code == 200
    assert (response.json()["priority"], response.json()["team"], response.json()["assignee"]) == ("high", people.team_b.pk, people.agent_b.pk)
    assert api_as(people.agent_a).get(f"{TICKETS}{ticket.pk}/").status_code == 404


def test_a_supervisor_unassigns_and_removes_the_team_with_null(people, board, api_as):
    response = patch(api_as(people.supervisor), board["a_open"], {"assignee": None, "team": None})

    assert response.status_code == 200
    assert (response.json()["assignee"], response.json()["team"]) == (None, None)


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "bogus"}, "status"),
    ({"priority": "critical"}, "priority"),
    ({"team": 999999}, "team"),
    ({"assignee": 999999}, "assignee"),
    ({"tags": "vip"}, "tags"),
    ({"tags": ["x" * 51]}, "tags"),
])
def test_invalid_values_get_400_with_field_errors(people, board, api_as, body, field):
    response = patch(api_as(people.supervisor), board["a_new"], body)

    assert response.status_code == 400
    assert field in response.json()
    assert Ticket.objects.get(pk=board["a_new"].pk).version == board["a_new"].version


def test_assigning_a_user_who_is_not_an_agent_is_400_with_a_reason(people, board, api_as):
    outsider = UserFactory(username="outsider", first_name="Olga", last_name="Outside")

    response = patch(api_as(people.supervisor), board["a_new"], {"assignee": outsider.pk})

    assert response.status_code == 400
    assert response.json()["detail"] == "Olga Outside is not an agent."
    assert Ticket.objects.get(pk=board["a_new"].pk).assignee is None


def test_changing_a_closed_ticket_is_409_with_a_reason(people, board, api_as):
    ticket = board["a_new"]
    services.ticket_set_status(ticket=ticket, status="closed", by=people.supervisor)

    response = patch(api_as(people.supervisor), ticket, {"status": "open"})

    assert response.status_code == 409
    assert response.json()["code"] == "ticket_closed"
    assert response.json()["detail"]


def test_a_read_only_token_may_list_but_not_patch(people, board, client):
    from omnicenter.services import api_token_create

    _token, key = api_token_create(user=people.supervisor, name="reporting", scopes=["tickets"], read_only=True)
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}

    assert client.get(TICKETS, **auth).status_code == 200
    response = client.patch(f"{TICKETS}{board['a_new'].pk}/", {"status": "open"}, content_type="application/json", **auth)
    assert response.status_code == 403
    assert Ticket.objects.get(pk=board["a_new"].pk).status == "new"


# --- timeline -------------------------------------------------------------------------------------

def test_messages_lists_the_timeline_oldest_first(people, board, api_as):
    ticket = board["a_open"]
    services.ticket_add_note(ticket=ticket, text="VIP customer", by=people.agent_a)
    services.ticket_set_status(ticket=ticket, status="pending", by=people.agent_a)

    response = api_as(people.agent_a).get(messages_url(ticket))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(e["kind"], e["text"]) for e in results] == [
        ("message", "The printer makes smoke"), ("note", "VIP customer"), ("event", ""),
    ]
    assert results[1]["author"] == {"type": "user", "id": people.agent_a.pk, "name": people.agent_a.display_name}
    assert results[2]["data"] == {"action": "status", "from": "open", "to": "pending"}


def test_posting_a_note_never_delivers_it(people, board, api_as, django_capture_on_commit_callbacks):
    ticket = board["a_open"]

    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(people.agent_a).post(messages_url(ticket), {"kind": "note", "text": "check stock"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["direction"], body["delivery_status"], body["channel"]) == ("note", "", "", None)
    assert TimelineEntry.objects.get(pk=body["id"]).delivery_status == ""


def test_posting_a_reply_queues_it_and_it_is_delivered_after_commit(people, board, api_as, api_channel, http_stub,
                                                                     django_capture_on_commit_callbacks):
    api_channel.channel.settings = {"outbound_url": http_stub.url("/replies")}
    api_channel.channel.save(update_fields=["settings"])
    http_stub.respond(status=201, json={"id": "crm-msg-1"})
    IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    ticket = board["a_open"]

    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(people.agent_a).post(messages_url(ticket), {"kind": "reply", "text": "On its way"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["direction"], body["delivery_status"]) == ("message", "out", "queued")
    assert body["channel"]["key"] == api_channel.channel.key
    entry = TimelineEntry.objects.get(pk=body["id"])
    assert entry.delivery_status == "sent"
    assert entry.provider_message_id == "crm-msg-1"
    assert [r.json()["text"] for r in http_stub.requests] == ["On its way"]


def test_a_reply_may_choose_another_channel_and_identity_of_the_customer(people, board, api_as, api_channel):
    phone = IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    ticket = board["a_open"]

    response = api_as(people.agent_a).post(
        messages_url(ticket), {"kind": "reply", "text": "Calling you", "channel": board["chat"].key, "identity": phone.pk},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["channel"]["key"] == board["chat"].key
    assert response.json()["identity"]["value"] == "+48601234567"


def test_a_reply_to_another_customers_identity_is_400(people, board, api_as):
    boris = people.other_customer.identities.get()

    response = api_as(people.agent_a).post(
        messages_url(board["a_open"]), {"kind": "reply", "text": "hi", "channel": board["chat"].key, "identity": boris.pk},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "reply", "text": ""}, "text"),
    ({"kind": "note"}, "text"),
    ({"kind": "note", "text": "hi", "channel": "CHAT"}, "channel"),
    ({"kind": "shout", "text": "hi"}, "kind"),
    ({"kind": "reply", "text": "hi", "channel": "no-such-key"}, "channel"),
    ({"kind": "note", "text": "hi", "attachments": [{"filename": "a.txt", "data_base64": "%%%"}]}, "attachments"),
])
def test_invalid_messages_get_400_with_field_errors(people, board, api_as, body, field):
    if body.get("channel") == "CHAT":
        body = {**body, "channel": board["chat"].key}
    ticket = board["a_open"]
    before = ticket.entries.count()

    response = api_as(people.agent_a).post(messages_url(ticket), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert ticket.entries.count() == before


def test_replying_on_a_closed_ticket_is_409(people, board, api_as):
    ticket = board["a_open"]
    services.ticket_set_status(ticket=ticket, status="closed", by=people.supervisor)

    response = api_as(people.agent_a).post(messages_url(ticket), {"kind": "reply", "text": "hello?"}, format="json")

    assert response.status_code == 409
    assert not ticket.entries.filter(direction="out").exists()


def test_attachments_come_as_base64_and_are_typed_by_their_bytes(people, board, api_as, client):
    body = {"kind": "note", "text": "screenshot attached", "attachments": [
        {"filename": "../../invoice.pdf", "content_type": "application/pdf", "data_base64": base64.b64encode(PNG).decode()},
        {"filename": "notes.txt", "data_base64": base64.b64encode(b"plain words").decode()},
    ]}

    response = api_as(people.agent_a).post(messages_url(board["a_open"]), body, format="json")

    assert response.status_code == 201
    attachments = response.json()["attachments"]
    assert [(a["filename"], a["content_type"], a["size"]) for a in attachments] == [
        ("invoice.pdf", "image/png", len(PNG)), ("notes.txt", "text/plain", 11),
    ]
    client.force_login(people.agent_a)
    download = client.get(attachments[0]["url"])
    assert b"".join(download.streaming_content) == PNG


def test_an_attachment_over_the_limit_is_refused_and_nothing_is_stored(people, board, api_as, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    ticket = board["a_open"]
    before = ticket.entries.count()
    body = {"kind": "note", "text": "big file", "attachments": [{"filename": "big.bin", "data_base64": base64.b64encode(b"x" * 11).decode()}]}

    response = api_as(people.agent_a).post(messages_url(ticket), body, format="json")

    assert response.status_code == 413
    assert "10" in response.json()["detail"]
    assert ticket.entries.count() == before


# --- query counts ---------------------------------------------------------------------------------

def count_queries(user_pk: int, url: str, api_as) -> int:
    api = api_as(User.objects.get(pk=user_pk))
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200
    return len(queries)


def add_tickets(people, channel, n: int) -> None:
    vip, _ = Tag.objects.get_or_create(name="vip")
    for i in range(n):
        customer = CustomerFactory()
        ticket = TicketFactory(customer=customer, team=people.team_a, assignee=people.agent_a, origin_channel=channel,
                               last_message_at=ago(i))
        ticket.tags.add(vip)
        EntryFactory(ticket=ticket, channel=channel)


@pytest.mark.parametrize("user", ["agent_a", "supervisor"])
def test_the_ticket_list_costs_the_same_queries_for_3_and_30_tickets(people, api_channel, api_as, user):
    user_pk = getattr(people, user).pk
    add_tickets(people, api_channel.channel, 3)
    few = count_queries(user_pk, TICKETS, api_as)

    add_tickets(people, api_channel.channel, 27)
    many = count_queries(user_pk, TICKETS, api_as)

    assert few == many


def test_the_timeline_costs_the_same_queries_for_3_and_30_entries(people, api_channel, api_as):
    ticket = TicketFactory(customer=people.customer, team=people.team_a, origin_channel=api_channel.channel)
    identity = people.customer.identities.get()

    def add(n: int) -> None:
        for _ in range(n):
            EntryFactory(ticket=ticket, channel=api_channel.channel, identity=identity, author_customer=people.customer)
            services.ticket_add_note(ticket=ticket, by=people.agent_a, text="note", attachments=[])
            services.ticket_reply(ticket=ticket, by=people.agent_a, text="reply")

    add(1)
    few = count_queries(people.agent_a.pk, messages_url(ticket), api_as)
    add(9)
    many = count_queries(people.agent_a.pk, messages_url(ticket), api_as)

    assert ticket.entries.count() == 30
    assert few == many


def test_the_timeline_with_attachments_costs_the_same_queries_for_3_and_30_entries(people, api_channel, api_as):
    from channels_inbound.base import InboundAttachment

    ticket = TicketFactory(customer=people.customer, team=people.team_a, origin_channel=api_channel.channel)

    def add(n: int) -> None:
        for i in range(n):
            services.ticket_add_note(ticket=ticket, by=people.agent_a, text=f"note {i}",
                                     attachments=[InboundAttachment(filename=f"{i}.txt", content_type="", data=b"hi")])

    add(3)
    few = count_queries(people.agent_a.pk, messages_url(ticket), api_as)
    add(27)
    many = count_queries(people.agent_a.pk, messages_url(ticket), api_as)

    assert few == many


# --- teams and users ------------------------------------------------------------------------------

def test_agents_read_teams(people, api_as):
    response = api_as(people.agent_a).get("/api/v1/teams/")

    assert response.status_code == 200
    teams = {t["name"]: t for t in response.json()["results"]}
    assert set(teams) == {"Support A", "Support B"}
    assert set(teams["Support A"]["members"]) == {people.agent_a.pk, people.supervisor.pk}


def test_an_admin_creates_a_team_with_members(people, api_as):
    response = api_as(people.admin).post("/api/v1/teams/", {"name": "Returns", "members": [people.agent_b.pk]}, format="json")

    assert response.status_code == 201
    team = Team.objects.get(name="Returns")
    assert list(team.members.all()) == [people.agent_b]


@pytest.mark.parametrize("user", ["agent_a", "supervisor"])
def test_agents_and_supervisors_cannot_create_or_change_teams(people, api_as, user):
    api = api_as(getattr(people, user))

    assert api.post("/api/v1/teams/", {"name": "Shadow team"}, format="json").status_code == 403
    assert api.patch(f"/api/v1/teams/{people.team_a.pk}/", {"name": "Mine now"}, format="json").status_code == 403
    assert not Team.objects.filter(name__in=["Shadow team", "Mine now"]).exists()


def test_a_duplicate_team_name_is_400(people, api_as):
    response = api_as(people.admin).post("/api/v1/teams/", {"name": "Support A"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()


def test_users_lists_staff_with_roles_and_teams(people, api_as):
    response = api_as(people.agent_a).get("/api/v1/users/")

    assert response.status_code == 200
    users = {u["username"]: u for u in response.json()["results"]}
    assert {k: users[k]["role"] for k in ("agent_a", "supervisor", "admin")} == {
        "agent_a": "agent", "supervisor": "supervisor", "admin": "admin",
    }
    assert users["agent_a"]["teams"] == [people.team_a.pk]
    assert "password" not in users["agent_a"]


def test_users_me_is_the_caller(people, api_as):
    response = api_as(people.supervisor).get("/api/v1/users/me/")

    assert response.status_code == 200
    assert (response.json()["username"], response.json()["role"]) == ("supervisor", "supervisor")
    assert sorted(response.json()["teams"]) == sorted([people.team_a.pk, people.team_b.pk])


def test_users_are_read_only(people, api_as):
    assert api_as(people.admin).post("/api/v1/users/", {"username": "x"}, format="json").status_code == 405


def test_users_list_costs_the_same_queries_for_few_and_many_users(people, api_as):
    few = count_queries(people.agent_a.pk, "/api/v1/users/", api_as)
    team = TeamFactory(name="Night shift")
    for i in range(10):
        UserFactory(username=f"night{i}", role="agent", teams=[team])
    many = count_queries(people.agent_a.pk, "/api/v1/users/", api_as)

    assert few == many
