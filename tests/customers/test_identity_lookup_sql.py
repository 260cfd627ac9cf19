"""Hand-written SQL on the ingest path returns the same model instances as the ORM (omnicenter/rawsql.py)."""

from __future__ import annotations

from customers import identities
from customers.models import Customer, Identity
from customers.services import _verified_identities, customer_resolve


def fields_of(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_verified_identities_match_the_orm_field_for_field(people):
    anna = customer_resolve(claims=[
        identities.claim(Identity.Kind.EMAIL, "anna.raw@example.pl"),
        identities.claim(Identity.Kind.PHONE, "+48601234567"),
    ], display_name="Anna Raw").customer
    Customer.objects.filter(pk=anna.pk).update(attributes={"plan": "gold", "seats": 3, "tags": ["vip"]})
    wanted = [
        identities.claim(Identity.Kind.EMAIL, "anna.raw@example.pl"),
        identities.claim(Identity.Kind.PHONE, "+48601234567"),
        identities.claim(Identity.Kind.EMAIL, "nobody@example.pl"),
    ]

    raw = sorted(_verified_identities(wanted), key=lambda i: i.pk)
    orm = list(Identity.objects.filter(customer=anna, verified=True).select_related("customer").order_by("pk"))

    assert [fields_of(i) for i in raw] == [fields_of(i) for i in orm]
    assert [fields_of(i.customer) for i in raw] == [fields_of(i.customer) for i in orm]
    assert raw[0].customer.attributes == {"plan": "gold", "seats": 3, "tags": ["vip"]}
    assert not raw[0]._state.adding and raw[0]._state.db == "default"


def test_unverified_claims_are_not_found(people):
    customer_resolve(claims=[identities.claim(Identity.Kind.EMAIL, "typed@example.pl", verified=False),
                             identities.claim(Identity.Kind.PHONE, "+48601234000")])

    assert _verified_identities([identities.claim(Identity.Kind.EMAIL, "typed@example.pl")]) == []
