"""Offer and plan eligibility: dates, lifecycle stage, market, products owned, with reasons."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog.models import OwnedProduct
from catalog.services import offer_eligibility, offers_for_customer
from tests.catalog.factories import OfferFactory, OwnedProductFactory, ProductFactory
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 6, 15)


@pytest.fixture
def customer():
    return CustomerFactory(lifecycle_stage="customer", attributes={"market": "PL"})


def test_an_unconditional_offer_is_open_to_everyone(customer):
    offer = OfferFactory()
    assert offer_eligibility(offer=offer, customer=customer, on=TODAY) == []
    assert offers_for_customer(customer=customer, on=TODAY) == [offer]


def test_validity_dates_bound_the_offer(customer, russian):
    offer = OfferFactory(valid_from=dt.date(2026, 6, 1), valid_until=dt.date(2026, 6, 30))
    assert offer_eligibility(offer=offer, customer=customer, on=TODAY) == []
    assert offer_eligibility(offer=offer, customer=customer, on=dt.date(2026, 5, 31), language="en") == ["The offer starts on 2026-06-01."]
    assert offer_eligibility(offer=offer, customer=customer, on=dt.date(2026, 5, 31), language="ru") == ["Предложение начинается 2026-06-01."]
    assert offer_eligibility(offer=offer, customer=customer, on=dt.date(2026, 7, 1), language="en") == ["The offer ended on 2026-06-30."]


def test_lifecycle_stage_and_market(customer):
    offer = OfferFactory(lifecycle_stages=["prospect"], markets=["DE", "AT"])
    assert offer_eligibility(offer=offer, customer=customer, on=TODAY, language="en") == [
        "The offer is for customers at another lifecycle stage (prospect).",
        "The offer is not available in the customer's market (DE, AT).",
    ]
    prospect = CustomerFactory(lifecycle_stage="prospect", attributes={"market": "de"})
    assert offer_eligibility(offer=offer, customer=prospect, on=TODAY) == []


def test_products_already_owned(customer):
    router, old_router = ProductFactory(sku="RTR-1"), ProductFactory(sku="RTR-0")
    upgrade = OfferFactory(requires_owned=[router])
    welcome = OfferFactory(excludes_owned=[router, old_router])

    assert offer_eligibility(offer=upgrade, customer=customer, on=TODAY, language="en") == ["The customer must already own one of: RTR-1."]
    assert offer_eligibility(offer=welcome, customer=customer, on=TODAY) == []

    owned = OwnedProductFactory(customer=customer, product=router)
    assert offer_eligibility(offer=upgrade, customer=customer, on=TODAY) == []
    assert offer_eligibility(offer=welcome, customer=customer, on=TODAY, language="en") == ["The customer already owns RTR-1."]
    assert offers_for_customer(customer=customer, on=TODAY) == [upgrade]

    owned.status = OwnedProduct.Status.ENDED  # an ended contract is not "owned" any more
    owned.save()
    assert offers_for_customer(customer=customer, on=TODAY) == [welcome]


def test_inactive_offers_are_never_eligible(customer):
    offer = OfferFactory(active=False)
    assert offer_eligibility(offer=offer, customer=customer, on=TODAY, language="en") == ["The offer is not active."]
    assert offers_for_customer(customer=customer, on=TODAY) == []


def test_offer_editor_saves_conditions_and_rejects_bad_dates(client, people):
    from catalog.models import ChangeLog, Offer

    ProductFactory(sku="RTR-1")
    client.force_login(people.admin)
    data = {"code": "SPRING", "kind": "offer", "name": "Spring", "terms": "Until June.", "valid_from": "2026-03-01",
            "valid_until": "2026-06-30", "lifecycle_stages": ["customer"], "markets": "pl, de", "products": "RTR-1",
            "requires_owned": "", "excludes_owned": "rtr-1", "active": "on"}
    assert client.post("/app/admin/catalog/offers/new/", data).status_code == 302
    offer = Offer.objects.get()
    assert (offer.markets, offer.lifecycle_stages, [p.sku for p in offer.excludes_owned.all()]) == (["PL", "DE"], ["customer"], ["RTR-1"])
    assert ChangeLog.objects.get().object_type == "offer"

    bad = client.post("/app/admin/catalog/offers/new/", {**data, "code": "LATE", "valid_until": "2026-01-01"})
    assert bad.status_code == 400 and "The offer ends before it starts." in bad.content.decode()
    unknown = client.post("/app/admin/catalog/offers/new/", {**data, "code": "X", "products": "NOPE"})
    assert unknown.status_code == 400 and "Unknown SKU: NOPE." in unknown.content.decode()
    assert Offer.objects.count() == 1
