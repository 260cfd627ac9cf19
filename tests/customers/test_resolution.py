"""customer_resolve: what a channel says about a sender becomes one customer (DESIGN.md step 6)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from customers.identities import claim
from customers.models import Customer, CustomerMerge, Identity, MergeSuggestion
from customers.services import customer_resolve
from omnicenter.errors import DomainError
from tests.factories import CustomerFactory, IdentityFactory


def identities_of(customer: Customer) -> set[tuple[str, str, str, bool]]:
    return set(customer.identities.values_list("kind", "namespace", "value", "verified"))


def test_given_an_unknown_sender_when_resolved_then_one_customer_holds_every_claimed_identity(db):
    result = customer_resolve(
        claims=[
            claim("phone", "+48 601 234 567"),
            claim("email", "Jan.Nowak@Example.COM"),
            claim("external", "crm-77", namespace="shop"),
        ],
        display_name="Jan Nowak",
        language="pl",
    )

    assert result.created is True
    assert Customer.objects.count() == 1
    assert result.customer.display_name == "Jan Nowak"
    assert result.customer.language == "pl"
    assert identities_of(result.customer) == {
        ("phone", "", "+48601234567", True),
        ("email", "", "jan.nowak@example.com", True),
        ("external", "shop", "crm-77", True),
    }
    # The identity the message is attributed to is the highest-precedence one.
    assert (result.identity.kind, result.identity.value) == ("external", "crm-77")


def test_given_a_known_email_when_a_new_phone_comes_with_it_then_the_phone_joins_that_customer(people):
    result = customer_resolve(claims=[claim("email", "ANNA@example.pl"), claim("phone", "+48 601 234 567")])

    assert result.created is False
    assert result.customer == people.customer
    assert result.identity.value == "anna@example.pl"
    assert ("phone", "", "+48601234567", True) in identities_of(people.customer)
    assert Customer.objects.count() == 2
    assert MergeSuggestion.objects.count() == 0
    assert Identity.objects.get(pk=result.identity.pk).last_seen_at is not None


def test_given_email_and_phone_of_different_customers_then_email_wins_over_phone(people):
    IdentityFactory(customer=people.other_customer, kind="phone", value="+48601234567")

    result = customer_resolve(claims=[claim("phone", "+48601234567"), claim("email", "anna@example.pl")])

    assert result.customer == people.customer
    assert result.identity.kind == "email"


def test_given_external_id_email_and_phone_of_three_customers_then_the_external_id_wins(people):
    third = CustomerFactory()
    IdentityFactory(customer=third, kind="external", namespace="shop", value="crm-1")
    IdentityFactory(customer=people.other_customer, kind="phone", value="+48601234567")

    result = customer_resolve(
        claims=[claim("phone", "+48601234567"), claim("email", "anna@example.pl"), claim("external", "crm-1", namespace="shop")]
    )

    assert result.customer == third
    pairs = {frozenset((s.customer_id, s.other_id)) for s in MergeSuggestion.objects.all()}
    assert pairs == {frozenset((third.pk, people.customer.pk)), frozenset((third.pk, people.other_customer.pk))}


def test_given_external_id_and_email_of_different_customers_then_nothing_is_merged_and_one_suggestion_is_recorded(people):
    holder = CustomerFactory(display_name="Shop account 9")
    IdentityFactory(customer=holder, kind="external", namespace="shop", value="crm-9")
    claims = [claim("email", "anna@example.pl"), claim("external", "crm-9", namespace="shop"), claim("phone", "+48601234567")]

    first = customer_resolve(claims=claims)
    second = customer_resolve(claims=claims)

    # The message goes to the external id's customer; the email stays where it was.
    assert first.customer == second.customer == holder
    assert identities_of(people.customer) == {("email", "", "anna@example.pl", True)}
    assert identities_of(holder) == {("external", "shop", "crm-9", True), ("phone", "", "+48601234567", True)}
    assert not CustomerMerge.objects.exists()
    assert not Customer.objects.filter(merged_into__isnull=False).exists()
    suggestion = MergeSuggestion.objects.get()
    assert {suggestion.customer_id, suggestion.other_id} == {holder.pk, people.customer.pk}
    assert suggestion.status == MergeSuggestion.Status.OPEN
    assert suggestion.reason


def test_given_only_an_unverified_email_of_a_known_customer_then_a_new_customer_is_created(people):
    result = customer_resolve(claims=[claim("email", "anna@example.pl", verified=False)], display_name="Somebody")

    assert result.created is True
    assert result.customer != people.customer
    assert identities_of(result.customer) == {("email", "", "anna@example.pl", False)}
    assert identities_of(people.customer) == {("email", "", "anna@example.pl", True)}
    assert MergeSuggestion.objects.count() == 0


def test_given_a_visitor_claiming_someone_elses_email_then_the_claim_stays_on_the_visitors_customer(people):
    visitor = customer_resolve(claims=[claim("visitor", "v-123", namespace="widget")]).customer

    result = customer_resolve(
        claims=[claim("visitor", "v-123", namespace="widget"), claim("email", "anna@example.pl", verified=False)]
    )

    assert result.customer == visitor
    assert result.identity.kind == "visitor"
    assert identities_of(visitor) == {("visitor", "widget", "v-123", True), ("email", "", "anna@example.pl", False)}
    assert identities_of(people.customer) == {("email", "", "anna@example.pl", True)}
    assert MergeSuggestion.objects.count() == 0


def test_given_an_unverified_claim_when_the_verified_owner_writes_later_then_the_claimant_is_not_selected(db):
    claimant = customer_resolve(
        claims=[claim("visitor", "v-1", namespace="widget"), claim("email", "new@example.com", verified=False)]
    ).customer

    owner = customer_resolve(claims=[claim("email", "new@example.com")])

    assert owner.created is True
    assert owner.customer != claimant
    assert identities_of(owner.customer) == {("email", "", "new@example.com", True)}
    assert ("email", "", "new@example.com", False) in identities_of(claimant)


def test_given_one_phone_on_sms_whatsapp_and_voice_then_it_is_one_identity_of_one_customer(db):
    sms = customer_resolve(claims=[claim("phone", "+48 601 234 567")])
    whatsapp = customer_resolve(claims=[claim("phone", "whatsapp:+48601234567")])
    voice = customer_resolve(claims=[claim("phone", "tel:+48-601-234-567")])

    assert sms.customer == whatsapp.customer == voice.customer
    assert sms.identity == whatsapp.identity == voice.identity
    assert Identity.objects.filter(kind="phone").count() == 1
    assert Customer.objects.count() == 1


def test_given_external_ids_in_different_namespaces_then_they_are_different_identities(db):
    shop_a = customer_resolve(claims=[claim("external", "42", namespace="shop-a")])
    shop_b = customer_resolve(claims=[claim("external", "42", namespace="shop-b")])
    shop_a_again = customer_resolve(claims=[claim("external", "42", namespace="shop-a")])

    assert shop_a.customer != shop_b.customer
    assert shop_a_again.customer == shop_a.customer
    assert Identity.objects.filter(kind="external", value="42").count() == 2
    assert MergeSuggestion.objects.count() == 0


def test_given_a_verified_identity_when_another_customer_gets_the_same_one_then_the_database_refuses(people):
    with pytest.raises(IntegrityError), transaction.atomic():
        IdentityFactory(customer=people.other_customer, kind="email", value="anna@example.pl", verified=True)

    # An unverified claim of the same address, or the same value of another kind, is allowed.
    IdentityFactory(customer=people.other_customer, kind="email", value="anna@example.pl", verified=False)
    IdentityFactory(customer=people.other_customer, kind="external", value="anna@example.pl")
    assert Identity.objects.filter(value="anna@example.pl", verified=True).count() == 2


def test_given_no_claims_when_resolved_then_a_domain_error_is_raised_and_nothing_is_created(db):
    with pytest.raises(DomainError):
        customer_resolve(claims=[])
    assert not Customer.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_phone", [False, True], ids=["email", "email-and-phone"])
def test_given_two_concurrent_messages_from_one_new_email_then_one_customer_and_one_identity_remain(with_phone):
    claims = [claim("email", "Race@Example.com")] + ([claim("phone", "+48 601 234 567")] if with_phone else [])
    barrier = threading.Barrier(2, timeout=30)
    results: list = []
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            barrier.wait()
            # Production resolves inside the inbound event's transaction (inbound_event_process).
            with transaction.atomic():
                results.append(customer_resolve(claims=claims, display_name="Racer"))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=resolve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 2
    assert results[0].customer.pk == results[1].customer.pk
    assert set(Identity.objects.values_list("value", "verified", "customer_id")) == {
        (c.value, True, results[0].customer.pk) for c in claims
    }
    assert Customer.objects.count() == 1
    assert not Customer.objects.filter(identities__isnull=True).exists()
    # A race between two deliveries from one sender is not a reason to suggest a merge.
    assert MergeSuggestion.objects.count() == 0
