"""The customers REST API: /api/v1/customers/."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from customers.models import Customer, CustomerMerge, Identity
from customers.services import customer_merge
from omnicenter.services import api_token_create
from tests.factories import CustomerFactory, EntryFactory, IdentityFactory, OrganizationFactory, TicketFactory
from tickets.models import Ticket, TimelineEntry

URL = "/api/v1/customers/"


def detail(customer, suffix: str = "") -> str:
    return f"{URL}{customer.pk}/{suffix}"


def names(response) -> set[str]:
    return {c["display_name"] for c in response.json()["results"]}


@pytest.fixture
def anna_phone(people):
    return IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")


# --- list, search, retrieve ---------------------------------------------------------------------

def test_given_customers_when_listed_then_the_page_has_count_next_previous_and_results(people, api_as):
    response = api_as(people.agent_a).get(URL, {"page_size": 1})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert body["next"] is not None and body["previous"] is None
    assert len(body["results"]) == 1
    second = api_as(people.agent_a).get(body["next"]).json()
    assert second["previous"] is not None and second["next"] is None
    assert {body["results"][0]["id"], second["results"][0]["id"]} == {people.customer.pk, people.other_customer.pk}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("kowal", {"Anna Kowalska"}),
        ("ИВАНОВ", {"Борис Иванов"}),
        ("Boris@Example.ru", {"Борис Иванов"}),
        ("example", {"Anna Kowalska", "Борис Иванов"}),
        ("+48601234567", {"Anna Kowalska"}),
        ("+48 601 234 567", {"Anna Kowalska"}),
        ("601-234-567", {"Anna Kowalska"}),
        ("nobody", set()),
    ],
)
def test_given_a_search_term_then_name_email_and_phone_match(people, anna_phone, api_as, term, expected):
    response = api_as(people.agent_a).get(URL, {"search": term})

    assert response.status_code == 200
    assert names(response) == expected


def test_given_a_merged_customer_then_it_is_not_listed_and_its_email_finds_the_survivor(people, api_as):
    customer_merge(into=people.customer, other=people.other_customer, by=people.supervisor)

    listed = api_as(people.agent_a).get(URL)
    searched = api_as(people.agent_a).get(URL, {"search": "boris@example.ru"})

    assert [c["id"] for c in listed.json()["results"]] == [people.customer.pk]
    assert [c["id"] for c in searched.json()["results"]] == [people.customer.pk]
    assert api_as(people.agent_a).get(detail(people.other_customer)).json()["merged_into"] == people.customer.pk


def test_given_a_customer_when_retrieved_then_profile_and_identities_are_returned(people, anna_phone, api_as):
    response = api_as(people.agent_b).get(detail(people.customer))

    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "Anna Kowalska"
    assert body["public_id"] == str(people.customer.public_id)
    assert {(i["kind"], i["value"], i["verified"]) for i in body["identities"]} == {
        ("email", "anna@example.pl", True), ("phone", "+48601234567", True)
    }
    assert api_as(people.agent_b).get(f"{URL}999999/").status_code == 404


def test_given_customers_when_listed_then_the_number_of_queries_does_not_grow_with_them(people, api_as):
    def add_customers(n: int) -> None:
        for customer in CustomerFactory.create_batch(n, organization=OrganizationFactory()):
            IdentityFactory(customer=customer)
            IdentityFactory(customer=customer, kind="phone", value=f"+4860100{customer.pk:04d}")

    client = api_as(people.agent_a)
    add_customers(1)
    client.get(URL)  # the persona's roles are cached on first use

    with CaptureQueriesContext(connection) as few:
        assert len(client.get(URL).json()["results"]) == 3
    add_customers(27)
    with CaptureQueriesContext(connection) as many:
        response = client.get(URL)

    assert len(response.json()["results"]) == 30
    assert all(c["organization"] for c in response.json()["results"][:28])
    assert len(many) == len(few) <= 5


# --- update and create --------------------------------------------------------------------------

def test_given_valid_fields_when_patched_then_the_profile_changes(people, api_as):
    response = api_as(people.agent_a).patch(
        detail(people.customer),
        {"display_name": "Anna K.", "lifecycle_stage": "customer", "attributes": {"tier": "gold"}},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["display_name"] == "Anna K."
    assert response.json()["organization"] is None
    customer = Customer.objects.get(pk=people.customer.pk)
    assert (customer.display_name, customer.lifecycle_stage, customer.attributes) == ("Anna K.", "customer", {"tier": "gold"})


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"lifecycle_stage": "vip"}, "lifecycle_stage"), ({"attributes": ["a", "b"]}, "attributes"),
     ({"attributes": "gold"}, "attributes"), ({"display_name": "x" * 201}, "display_name")],
)
def test_given_invalid_fields_when_patched_then_400_names_the_field_and_nothing_changes(people, api_as, payload, field):
    response = api_as(people.agent_a).patch(detail(people.customer), {"display_name": "Changed", **payload}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert Customer.objects.get(pk=people.customer.pk).display_name == "Anna Kowalska"


def test_given_new_identities_when_a_customer_is_created_then_they_are_normalized_and_attached(people, api_as):
    response = api_as(people.agent_a).post(
        URL,
        {"display_name": "Jan Nowak", "lifecycle_stage": "customer", "new_identities": [
            {"kind": "email", "value": "Jan@Bücher.example"},
            {"kind": "phone", "value": "+48 602 000 111"},
            {"kind": "external", "value": "crm-9", "namespace": "shop"},
        ]},
        format="json",
    )

    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(pk=response.json()["id"])
    assert customer.display_name == "Jan Nowak"
    assert set(customer.identities.values_list("kind", "namespace", "value", "verified")) == {
        ("email", "", "jan@xn--bcher-kva.example", True), ("phone", "", "+48602000111", True),
        ("external", "shop", "crm-9", True),
    }
    assert "new_identities" not in response.json()
    assert len(response.json()["identities"]) == 3


def test_given_an_identity_of_someone_else_when_a_customer_is_created_then_409_and_nothing_is_created(people, api_as):
    response = api_as(people.agent_a).post(
        URL,
        {"display_name": "Impostor", "new_identities": [
            {"kind": "phone", "value": "+48 602 000 111"}, {"kind": "email", "value": "ANNA@example.pl"},
        ]},
        format="json",
    )

    assert response.status_code == 409
    assert "belongs to another customer" in response.json()["detail"]
    assert not Customer.objects.filter(display_name="Impostor").exists()
    assert not Identity.objects.filter(value="+48602000111").exists()


def test_given_an_invalid_identity_when_a_customer_is_created_then_400_with_field_errors(people, api_as):
    response = api_as(people.agent_a).post(
        URL, {"display_name": "X", "new_identities": [{"kind": "email", "value": "not-an-email"},
                                                      {"kind": "fax", "value": "1"}]},
        format="json",
    )

    assert response.status_code == 400
    # DRF keys a nested list's errors by position.
    errors = response.json()["new_identities"]
    assert "not an email address" in errors["0"]["value"][0]
    assert "kind" in errors["1"]
    assert Customer.objects.count() == 2


# --- timeline -----------------------------------------------------------------------------------

@pytest.fixture
def two_team_history(people):
    """Anna wrote to team A and to team B; Boris wrote to team A."""
    ticket_a = TicketFactory(customer=people.customer, team=people.team_a)
    ticket_b = TicketFactory(customer=people.customer, team=people.team_b)
    entries_a = [EntryFactory(ticket=ticket_a, text="Chat with A"),
                 EntryFactory(ticket=ticket_a, kind=TimelineEntry.Kind.NOTE, direction="", text="Note on A")]
    entries_b = [EntryFactory(ticket=ticket_b, text="Email to B")]
    EntryFactory(ticket=TicketFactory(customer=people.other_customer, team=people.team_a), text="Boris")
    return {e.pk for e in entries_a}, {e.pk for e in entries_b}


def timeline_ids(client, customer) -> list[int]:
    response = client.get(detail(customer, "timeline/"))
    assert response.status_code == 200
    assert set(response.json()) == {"count", "next", "previous", "results"}
    return [e["id"] for e in response.json()["results"]]


def test_given_tickets_in_two_teams_then_each_agent_sees_only_their_teams_entries(people, api_as, two_team_history):
    team_a_entries, team_b_entries = two_team_history

    assert set(timeline_ids(api_as(people.agent_a), people.customer)) == team_a_entries
    assert set(timeline_ids(api_as(people.agent_b), people.customer)) == team_b_entries


def test_given_tickets_in_two_teams_then_a_supervisor_sees_the_whole_timeline_oldest_first(people, api_as, two_team_history):
    team_a_entries, team_b_entries = two_team_history

    ids = timeline_ids(api_as(people.supervisor), people.customer)

    assert set(ids) == team_a_entries | team_b_entries
    assert ids == sorted(ids)


def test_given_an_agent_assigned_a_ticket_outside_their_teams_then_its_entries_show(people, api_as, two_team_history):
    _team_a_entries, team_b_entries = two_team_history
    Ticket.objects.filter(team=people.team_b).update(assignee=people.agent_a)

    assert team_b_entries <= set(timeline_ids(api_as(people.agent_a), people.customer))


# --- merge and un-merge -------------------------------------------------------------------------

def test_given_two_customers_when_merged_and_unmerged_through_the_api_then_both_are_restored(people, api_as):
    TicketFactory(customer=people.other_customer, team=people.team_a)
    client = api_as(people.agent_a)

    merged = client.post(detail(people.customer, "merge/"), {"other": people.other_customer.pk}, format="json")

    assert merged.status_code == 201
    assert merged.json()["merged_by"] == people.agent_a.pk
    assert Ticket.objects.get().customer_id == people.customer.pk
    merges = client.get(detail(people.customer, "merges/")).json()
    assert [m["id"] for m in merges] == [merged.json()["id"]]

    undone = client.post(detail(people.customer, "unmerge/"), {"merge": merged.json()["id"]}, format="json")

    assert undone.status_code == 200
    assert undone.json()["undone_at"] is not None
    assert Ticket.objects.get().customer_id == people.other_customer.pk
    assert Customer.objects.get(pk=people.other_customer.pk).merged_into is None
    again = client.post(detail(people.customer, "unmerge/"), {"merge": merged.json()["id"]}, format="json")
    assert again.status_code == 400
    assert again.json()["code"] == "merge_not_allowed"


@pytest.mark.parametrize(("payload", "status"), [({}, 400), ({"other": "abc"}, 400), ({"other": 999999}, 404)])
def test_given_bad_merge_input_then_4xx_and_nothing_merges(people, api_as, payload, status):
    response = api_as(people.agent_a).post(detail(people.customer, "merge/"), payload, format="json")

    assert response.status_code == status
    assert not CustomerMerge.objects.exists()


def test_given_a_customer_when_merged_with_itself_through_the_api_then_400_with_a_readable_message(people, api_as):
    response = api_as(people.agent_a).post(detail(people.customer, "merge/"), {"other": people.customer.pk}, format="json")

    assert response.status_code == 400
    assert "itself" in response.json()["detail"]
    assert not CustomerMerge.objects.exists()


def test_given_bad_unmerge_input_then_4xx_and_the_merge_stays(people, api_as):
    merge = customer_merge(into=people.customer, other=people.other_customer, by=people.supervisor)
    client = api_as(people.agent_a)

    missing = client.post(detail(people.customer, "unmerge/"), {}, format="json")
    unknown = client.post(detail(people.customer, "unmerge/"), {"merge": 999999}, format="json")
    not_into_this = client.post(detail(people.other_customer, "unmerge/"), {"merge": merge.pk}, format="json")

    assert missing.status_code == 400
    assert "merge" in missing.json()
    assert unknown.status_code == 404
    assert not_into_this.status_code == 404
    merge.refresh_from_db()
    assert merge.undone_at is None


# --- GDPR endpoints -----------------------------------------------------------------------------

def test_given_a_plain_agent_when_exporting_then_403_and_a_supervisor_gets_the_export(people, api_as):
    assert api_as(people.agent_a).get(detail(people.customer, "export/")).status_code == 403

    response = api_as(people.supervisor).get(detail(people.customer, "export/"))

    assert response.status_code == 200
    assert response.json()["identities"][0]["value"] == "anna@example.pl"


def test_given_a_supervisor_when_erasing_then_403_and_an_admin_erases_with_204(people, api_as):
    assert api_as(people.agent_a).post(detail(people.customer, "erase/")).status_code == 403
    assert api_as(people.supervisor).post(detail(people.customer, "erase/")).status_code == 403
    assert Customer.objects.get(pk=people.customer.pk).erased_at is None

    response = api_as(people.admin).post(detail(people.customer, "erase/"))

    assert response.status_code == 204
    customer = Customer.objects.get(pk=people.customer.pk)
    assert customer.erased_at is not None
    assert not customer.identities.exists()


# --- authentication -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("post", ""), ("get", "{id}/"), ("patch", "{id}/"), ("get", "{id}/timeline/"), ("post", "{id}/merge/"),
     ("get", "{id}/export/"), ("post", "{id}/erase/")],
)
def test_given_an_anonymous_request_then_it_is_refused_and_nothing_changes(people, method, suffix):
    response = getattr(APIClient(), method)(URL + suffix.format(id=people.customer.pk), {}, format="json")

    assert response.status_code == 401
    assert "Token" in response["WWW-Authenticate"]
    assert Customer.objects.get(pk=people.customer.pk).erased_at is None
    assert Customer.objects.count() == 2


def test_given_a_read_only_token_then_it_can_read_but_not_write(people):
    _token, key = api_token_create(user=people.supervisor, name="BI export", scopes=["customers"], read_only=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert client.get(URL).status_code == 200
    assert client.get(detail(people.customer)).status_code == 200
    assert client.get(detail(people.customer, "timeline/")).status_code == 200
    assert client.get(detail(people.customer, "export/")).status_code == 200
    assert client.post(URL, {"display_name": "New"}, format="json").status_code == 403
    assert client.patch(detail(people.customer), {"display_name": "Changed"}, format="json").status_code == 403
    merge = client.post(detail(people.customer, "merge/"), {"other": people.other_customer.pk}, format="json")
    assert merge.status_code == 403
    assert Customer.objects.count() == 2
    assert Customer.objects.get(pk=people.customer.pk).display_name == "Anna Kowalska"
    assert not CustomerMerge.objects.exists()


def test_given_a_full_token_then_it_can_write(people):
    _token, key = api_token_create(user=people.agent_a, name="CRM sync", scopes=["customers"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.patch(detail(people.customer), {"display_name": "Anna K."}, format="json")

    assert response.status_code == 200
    assert Customer.objects.get(pk=people.customer.pk).display_name == "Anna K."


def test_an_agent_cannot_merge_customers_with_tickets_of_another_team_but_a_supervisor_can(people, api_as):
    from tests.factories import TicketFactory

    TicketFactory(customer=people.customer, team=people.team_a)
    TicketFactory(customer=people.other_customer, team=people.team_a)
    url = f"/api/v1/customers/{people.customer.pk}/merge/"

    refused = api_as(people.agent_b).post(url, {"other": people.other_customer.pk}, format="json")
    as_bool = api_as(people.supervisor).post(url, {"other": True}, format="json")
    allowed_agent = api_as(people.agent_a).post(url, {"other": people.other_customer.pk}, format="json")

    assert refused.status_code == 403
    assert as_bool.status_code == 400
    assert allowed_agent.status_code == 201
