"""The inbox's view counts on PostgreSQL (index-only, tickets/inbox.py `_view_counts_indexed`) equal
the plain aggregate over what each user may see (`view_counts_aggregate`, also the SQLite path),
for agents in one or several teams, agents with tickets of other teams, supervisors and users
without a staff role, and cost one statement whatever the number of tickets."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.utils import timezone

from omnicenter.models import User
from tests.factories import EntryFactory, TeamFactory, TicketFactory, UserFactory
from tickets import inbox
from tickets.models import CallbackRequest, Mention

pytestmark = pytest.mark.django_db

STATUSES = ("new", "open", "pending", "solved", "closed")


@pytest.fixture
def mixed(people):
    """Tickets of every status in both teams and in none, unassigned or assigned to agents in and
    out of the ticket's team, with mentions and callbacks spread over them."""
    team_c = TeamFactory(name="Support C")
    both = UserFactory(username="agent_ab", role="agent", teams=[people.team_a, people.team_b])
    loner = UserFactory(username="agent_none", role="agent", teams=[])
    people.both, people.loner, people.team_c = both, loner, team_c
    assignees = [None, people.agent_a, people.agent_b, both, loner, people.supervisor]
    teams = [people.team_a, people.team_b, team_c, None]
    tickets = []
    for status, team, assignee in itertools.product(STATUSES, teams, assignees):
        tickets.append(TicketFactory(customer=people.customer, status=status, team=team, assignee=assignee))
    for i, ticket in enumerate(tickets):
        if i % 3 == 0:
            note = EntryFactory(ticket=ticket, kind="note", text="@someone")
            for user in (people.agent_a, people.agent_b, both, loner)[i % 4:]:
                Mention.objects.create(entry=note, ticket=ticket, user=user)
        if i % 4 == 0:  # done only (not due), or done and due again
            CallbackRequest.objects.create(ticket=ticket, phone="+48601234567", preferred_at=timezone.now(),
                                           done_at=timezone.now())
        if i % 8 == 4:
            CallbackRequest.objects.create(ticket=ticket, phone="+48601234568", preferred_at=timezone.now())
    return people


def users(people):
    return [people.agent_a, people.agent_b, people.both, people.loner, people.supervisor, people.admin]


def test_indexed_counts_equal_the_aggregate_for_every_kind_of_user(mixed):
    assert connection.vendor == "postgresql"
    for user in users(mixed):
        expected = inbox.view_counts_aggregate(user)
        assert inbox.view_counts(user) == expected, user.username
    # The data reaches every branch: not all zero, and the two-team agent sees more than one team.
    assert inbox.view_counts(mixed.agent_a)["mentions"] > 0 and inbox.view_counts(mixed.agent_a)["callbacks"] > 0
    assert inbox.view_counts(mixed.both)["teams"] > inbox.view_counts(mixed.agent_a)["teams"] > 0
    assert inbox.view_counts(mixed.loner)["open"] > 0  # only their own tickets, outside any team of theirs
    assert inbox.view_counts(mixed.supervisor)["open"] == 3 * 4 * 6


def test_a_customer_account_counts_nothing(people):
    customer_user = UserFactory(username="portal_user")
    TicketFactory(customer=people.customer, status="open", team=people.team_a, assignee=customer_user)

    assert set(inbox.view_counts(customer_user).values()) == {0}
    assert inbox.view_counts(customer_user) == inbox.view_counts_aggregate(customer_user)


@pytest.mark.parametrize("size", [3, 30])
def test_the_counts_cost_one_statement_whatever_the_number_of_tickets(people, django_assert_num_queries, size):
    for i in range(size):
        TicketFactory(customer=people.customer, status=STATUSES[i % 5], team=people.team_a,
                      assignee=people.agent_a if i % 2 else None)
    agent = User.objects.get(pk=people.agent_a.pk)  # nothing cached on it
    with django_assert_num_queries(3):  # the user's roles, their teams, then the counts
        counts = inbox.view_counts(agent)
    assert counts["open"] == len([i for i in range(size) if STATUSES[i % 5] in ("new", "open", "pending")])
