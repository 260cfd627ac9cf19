"""Merging two customers, and undoing it exactly."""

from __future__ import annotations

from typing import Any

import pytest

from customers.identities import claim
from customers.models import Customer, CustomerMerge, MergeSuggestion
from customers.services import (
    MergeNotAllowed,
    customer_erase,
    customer_merge,
    customer_resolve,
    customer_unmerge,
    customer_update,
    merge_suggestion_record,
)
from tests.factories import CustomerFactory, IdentityFactory, OrganizationFactory, TicketFactory
from tickets.models import Ticket

# updated_at is a change stamp, not data: a merge and its undo are two changes.
SNAPSHOT_EXCLUDED = {"updated_at"}


def snapshot(*customers: Customer) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for customer in customers:
        row = Customer.objects.get(pk=customer.pk)
        state[customer.pk] = {
            "fields": {
                f.attname: getattr(row, f.attname) for f in Customer._meta.concrete_fields if f.name not in SNAPSHOT_EXCLUDED
            },
            "identities": set(row.identities.values_list("kind", "namespace", "value", "verified")),
            "tickets": set(Ticket.objects.filter(customer=row).values_list("pk", flat=True)),
        }
    state["suggestions"] = dict(MergeSuggestion.objects.values_list("pk", "status"))
    return state


@pytest.fixture
def pair(people):
    """Anna (into) and Boris (other) with overlapping and distinct data, tickets and suggestions."""
    into, other = people.customer, people.other_customer
    customer_update(customer=into, lifecycle_stage="customer", attributes={"tier": "gold"})
    customer_update(
        customer=other, language="ru", attributes={"tier": "silver", "city": "Moscow"},
        organization=OrganizationFactory(name="Romashka"),
    )
    IdentityFactory(customer=other, kind="phone", value="+79161234567")
    IdentityFactory(customer=other, kind="external", namespace="shop", value="crm-5")
    # The same unverified claim on both: it cannot move (one per customer) and must stay put.
    IdentityFactory(customer=into, kind="email", value="shared@example.com", verified=False)
    IdentityFactory(customer=other, kind="email", value="shared@example.com", verified=False)
    TicketFactory(customer=into)
    TicketFactory.create_batch(2, customer=other)
    merge_suggestion_record(customer=into, other=other, reason="test")
    third = CustomerFactory()
    merge_suggestion_record(customer=other, other=third, reason="test")
    return into, other


def test_given_two_customers_when_merged_then_identities_and_tickets_move_to_into(pair, people):
    into, other = pair
    other_tickets = set(Ticket.objects.filter(customer=other).values_list("pk", flat=True))

    merge = customer_merge(into=into, other=other, by=people.supervisor)

    assert set(Ticket.objects.filter(customer=into).values_list("pk", flat=True)) >= other_tickets
    assert not Ticket.objects.filter(customer=other).exists()
    assert {("phone", "+79161234567"), ("external", "crm-5"), ("email", "boris@example.ru")} <= set(
        into.identities.values_list("kind", "value")
    )
    assert set(other.identities.values_list("kind", "value", "verified")) == {("email", "shared@example.com", False)}
    other.refresh_from_db()
    assert other.merged_into == into
    assert merge.merged_by == people.supervisor
    assert merge.merged_at is not None
    assert (merge.into, merge.other, merge.undone_at) == (into, other, None)
    assert MergeSuggestion.objects.get(customer__in=[into, other], other__in=[into, other]).status == "merged"


def test_given_a_merge_then_into_keeps_its_values_and_gains_the_ones_it_lacked(pair, people):
    into, other = pair

    customer_merge(into=into, other=other, by=people.supervisor)

    into.refresh_from_db()
    assert into.display_name == "Anna Kowalska"
    assert into.lifecycle_stage == "customer"
    assert into.language == "ru"
    assert into.organization.name == "Romashka"
    assert into.attributes == {"tier": "gold", "city": "Moscow"}


def test_given_a_merge_when_the_absorbed_customer_writes_again_then_the_message_reaches_into(pair, people):
    into, other = pair
    customer_merge(into=into, other=other, by=people.supervisor)

    result = customer_resolve(claims=[claim("email", "boris@example.ru")])

    assert result.customer == into


def test_given_a_customer_when_merged_with_itself_then_merge_is_refused_and_nothing_changes(pair, people):
    into, other = pair
    before = snapshot(into, other)

    with pytest.raises(MergeNotAllowed) as excinfo:
        customer_merge(into=into, other=into, by=people.supervisor)

    assert "itself" in str(excinfo.value)
    assert snapshot(into, other) == before
    assert not CustomerMerge.objects.exists()


@pytest.mark.parametrize("absorbed", ["into", "other"])
def test_given_an_already_merged_customer_when_merged_again_then_merge_is_refused_and_nothing_changes(pair, people, absorbed):
    into, other = pair
    third = CustomerFactory(display_name="Third")
    TicketFactory(customer=third)
    customer_merge(into=third, other=into if absorbed == "into" else other, by=people.supervisor)
    before = snapshot(into, other, third)

    with pytest.raises(MergeNotAllowed):
        customer_merge(into=into, other=other, by=people.supervisor)

    assert snapshot(into, other, third) == before
    assert CustomerMerge.objects.count() == 1


@pytest.mark.parametrize("erased", ["into", "other"])
def test_given_an_erased_customer_when_merged_then_merge_is_refused_and_nothing_changes(pair, people, erased):
    into, other = pair
    customer_erase(customer=into if erased == "into" else other, by=people.admin)
    before = snapshot(into, other)

    with pytest.raises(MergeNotAllowed):
        customer_merge(into=into, other=other, by=people.supervisor)

    assert snapshot(into, other) == before
    assert not CustomerMerge.objects.exists()


def test_two_customers_merged_and_then_unmerged_are_exactly_as_they_were_before(pair, people):
    into, other = pair
    before = snapshot(into, other)

    merge = customer_merge(into=into, other=other, by=people.supervisor)
    assert snapshot(into, other) != before
    customer_unmerge(merge=merge, by=people.supervisor)

    assert snapshot(into, other) == before
    merge.refresh_from_db()
    assert merge.undone_at is not None
    assert merge.undone_by == people.supervisor


def test_given_an_empty_profile_into_when_unmerged_then_the_fields_it_gained_are_emptied_again(people):
    into = CustomerFactory(display_name="")
    other = people.other_customer
    customer_update(customer=other, language="ru", attributes={"vip": True})
    before = snapshot(into, other)

    merge = customer_merge(into=into, other=other, by=people.admin)
    into.refresh_from_db()
    assert (into.display_name, into.language, into.attributes) == ("Борис Иванов", "ru", {"vip": True})
    customer_unmerge(merge=merge, by=people.admin)

    assert snapshot(into, other) == before


def test_given_a_ticket_created_for_into_after_the_merge_when_unmerged_then_it_stays_with_into(pair, people):
    into, other = pair
    merge = customer_merge(into=into, other=other, by=people.supervisor)
    later = TicketFactory(customer=into)

    customer_unmerge(merge=merge, by=people.supervisor)

    later.refresh_from_db()
    assert later.customer == into
    assert Ticket.objects.filter(customer=other).count() == 2


def test_given_a_profile_field_changed_after_the_merge_when_unmerged_then_it_is_not_clobbered(pair, people):
    into, other = pair
    merge = customer_merge(into=into, other=other, by=people.supervisor)
    into.refresh_from_db()
    customer_update(customer=into, language="pl")

    customer_unmerge(merge=merge, by=people.supervisor)

    into.refresh_from_db()
    assert into.language == "pl"
    # Fields nobody touched since the merge are restored.
    assert into.organization is None
    assert into.attributes == {"tier": "gold"}


def test_given_an_undone_merge_when_unmerged_again_then_it_is_refused_and_nothing_changes(pair, people):
    into, other = pair
    merge = customer_merge(into=into, other=other, by=people.supervisor)
    customer_unmerge(merge=merge, by=people.supervisor)
    after_first_undo = snapshot(into, other)

    with pytest.raises(MergeNotAllowed):
        customer_unmerge(merge=merge, by=people.supervisor)

    assert snapshot(into, other) == after_first_undo


def test_given_into_later_merged_into_a_third_when_unmerged_then_refused_until_the_later_merge_is_undone(pair, people):
    into, other = pair
    third = CustomerFactory(display_name="", language="")
    TicketFactory(customer=third)
    before = snapshot(into, other, third)
    first = customer_merge(into=into, other=other, by=people.supervisor)
    second = customer_merge(into=third, other=into, by=people.supervisor)
    while_merged = snapshot(into, other, third)

    with pytest.raises(MergeNotAllowed) as excinfo:
        customer_unmerge(merge=first, by=people.supervisor)
    assert "Anna Kowalska" in str(excinfo.value)
    assert snapshot(into, other, third) == while_merged

    customer_unmerge(merge=second, by=people.supervisor)
    customer_unmerge(merge=first, by=people.supervisor)

    assert snapshot(into, other, third) == before


def test_given_into_held_an_unverified_claim_of_others_email_when_other_writes_after_the_merge_then_into_gets_it(people):
    # A chat visitor typed Boris's address (unverified); the agent then merged Boris into the visitor.
    visitor = customer_resolve(
        claims=[claim("visitor", "v-1", namespace="widget"), claim("email", "boris@example.ru", verified=False)]
    ).customer
    customer_merge(into=visitor, other=people.other_customer, by=people.agent_a)

    result = customer_resolve(claims=[claim("email", "boris@example.ru")])

    assert result.customer == visitor
    assert result.created is False
    assert result.identity.kind == "email"
