"""/api/v1/catalog/products/ and /api/v1/catalog/validate/: shapes, variants, permissions, errors."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from catalog.models import Product, ProductText, Rule
from omnicenter.services import api_token_create
from tests.catalog.factories import ProductFactory, RuleFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/catalog/products/"
VALIDATE = "/api/v1/catalog/validate/"


@pytest.fixture
def router():
    product = ProductFactory(sku="RTR-1", name="Fibre router", markets=["PL", "DE"])
    ProductText.objects.filter(product=product, language="en").update(
        description="A router for fibre lines.", short="Fibre router, 1 Gbit/s.", full="The fibre router: 1 Gbit/s, Wi-Fi 6.")
    ProductText.objects.create(product=product, language="ru", name="Оптоволоконный роутер",
                               description="Роутер для оптоволоконных линий.", short="Роутер 1 Гбит/с.")
    return product


def token_client(user, *, read_only: bool) -> APIClient:
    _token, key = api_token_create(user=user, name="bot", read_only=read_only)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_product_list_is_paginated_and_says_what_it_serves(people, api_as, router):
    response = api_as(people.agent_a).get(PRODUCTS, {"lang": "ru", "channel": "sms"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    item = body["results"][0]
    assert item["sku"] == "RTR-1"
    assert item["name"] == "Оптоволоконный роутер"
    assert item["text"] == "Роутер 1 Гбит/с."
    assert item["served"] == {"language": "ru", "requested_language": "ru", "variant": "short", "channel": "sms", "fallback": False}
    assert item["translations"] == ["en", "ru"]
    assert item["prices"] == [{"market": "DE", "currency": "EUR", "amount": "10.00"}, {"market": "PL", "currency": "PLN", "amount": "10.00"}]


def test_variants_fall_back_to_the_description_and_the_source_language(people, api_as, router):
    api = api_as(people.agent_a)

    email_ru = api.get(f"{PRODUCTS}{router.pk}/", {"lang": "ru", "channel": "email"}).json()
    assert email_ru["text"] == "Роутер для оптоволоконных линий."
    assert email_ru["served"]["variant"] == "description"
    assert email_ru["served"]["fallback"] is True

    polish = api.get(f"{PRODUCTS}{router.pk}/", {"lang": "pl", "channel": "email"}).json()
    assert polish["name"] == "Fibre router"
    assert polish["text"] == "The fibre router: 1 Gbit/s, Wi-Fi 6."
    assert polish["served"] == {"language": "en", "requested_language": "pl", "variant": "full", "channel": "email", "fallback": True}


def test_search_finds_by_name_and_sku_and_keeps_pagination(people, api_as, router):
    ProductFactory(sku="TV-1", name="TV box")
    ProductFactory(sku="RTR-OLD", name="Old router", status=Product.Status.RETIRED)
    api = api_as(people.agent_a)

    found = api.get(PRODUCTS, {"q": "router"}).json()
    assert [p["sku"] for p in found["results"]] == ["RTR-1"]  # retired products are not offered
    assert api.get(PRODUCTS, {"q": "rtr-1"}).json()["results"][0]["sku"] == "RTR-1"
    assert [p["sku"] for p in api.get(PRODUCTS, {"q": "router", "status": "all"}).json()["results"]] == ["RTR-1", "RTR-OLD"]
    page = api.get(PRODUCTS, {"q": "router", "status": "all", "page_size": 1}).json()
    assert page["count"] == 2 and page["next"] and len(page["results"]) == 1


def test_product_list_queries_do_not_grow_with_products(people, api_as, django_assert_num_queries, router):
    api = api_as(people.agent_a)
    api.get(PRODUCTS)  # the first request caches the user's roles on the (forced) user object
    for _ in range(10):
        ProductFactory(texts={"ru": "Товар"}, markets=["PL", "RU"])
    with django_assert_num_queries(3):  # the COUNT, the page's ids, the page's products with texts, prices, images
        assert api.get(PRODUCTS).json()["count"] == 11
    with django_assert_num_queries(2):  # the search statement (its ids are the count), the page's products
        assert api.get(PRODUCTS, {"q": "product", "page_size": 5}).json()["count"] == 10


def test_search_statements_with_a_token_are_the_tokens_two_more(people, router, django_assert_num_queries):
    """A bot's read-only token: the token (with its user) and the user's roles, then the search and
    the page. Its last use is recorded at most once a minute, not on every request."""
    bot = token_client(people.agent_a, read_only=True)
    assert bot.get(PRODUCTS, {"q": "router"}).status_code == 200  # records last_used_at
    with django_assert_num_queries(4):
        assert [p["sku"] for p in bot.get(PRODUCTS, {"q": "router"}).json()["results"]] == ["RTR-1"]


def test_the_plain_representation_is_exactly_what_the_documented_serializer_returns(people, api_as, router):
    from django.core.files.base import ContentFile

    from catalog.api import ProductSerializer
    from catalog.models import Category, ProductImage
    from catalog.selectors import products_with_texts

    router.category = Category.objects.create(name="Routers")
    router.save()
    ProductImage.objects.create(product=router, file=ContentFile(b"GIF89a", name="r.gif"), alt="Front")
    ProductFactory(sku="TV-1", name="TV box", markets=[])
    api = api_as(people.agent_a)
    for params in ({"lang": "ru", "channel": "sms"}, {"lang": "pl", "channel": "email"}, {}, {"q": "router", "lang": "en"}):
        response = api.get(PRODUCTS, params)
        request = response.wsgi_request
        context = {"request": request, "lang": params.get("lang") or request.LANGUAGE_CODE, "channel": params.get("channel", "")}
        by_id = {p.pk: p for p in products_with_texts()}
        expected = [ProductSerializer(by_id[item["id"]], context=context).data for item in response.json()["results"]]
        assert response.json()["results"] == expected and expected
        detail = api.get(f"{PRODUCTS}{router.pk}/", params)
        assert detail.json() == ProductSerializer(by_id[router.pk], context={**context, "request": detail.wsgi_request}).data
    assert response.json()["results"][0]["images"][0]["url"].startswith("http://testserver/")


def test_anonymous_and_non_staff_cannot_read(client, router):
    assert client.get(PRODUCTS).status_code in (401, 403)
    assert client.post(VALIDATE, {"items": [{"sku": "RTR-1"}]}, content_type="application/json").status_code in (401, 403)
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token nope")
    assert stranger.get(PRODUCTS).status_code == 401


def test_read_only_tokens_read_and_validate_but_products_cannot_be_written(people, router):
    bot = token_client(people.admin, read_only=True)
    assert bot.get(PRODUCTS).status_code == 200
    assert bot.post(VALIDATE, {"items": [{"sku": "RTR-1"}]}, format="json").status_code == 200
    writer = token_client(people.admin, read_only=False)
    assert writer.post(PRODUCTS, {"sku": "NEW"}, format="json").status_code == 405
    assert writer.delete(f"{PRODUCTS}{router.pk}/").status_code == 405
    assert Product.objects.count() == 1


def test_bot_tokens_see_released_products_only_whatever_they_ask(people, router):
    draft = ProductFactory(sku="RTR-9", name="Next router", status=Product.Status.DRAFT)
    bot = token_client(people.admin, read_only=True)
    for params in ({}, {"status": "all"}, {"status": "draft"}, {"q": "router", "status": "all"}):
        response = bot.get(PRODUCTS, params)
        assert response.status_code == 200, params
        assert [item["sku"] for item in response.json()["results"]] == ["RTR-1"], params
    assert bot.get(f"{PRODUCTS}{draft.pk}/", {"status": "all"}).status_code == 404
    staff = token_client(people.admin, read_only=False)
    assert [item["sku"] for item in staff.get(PRODUCTS, {"status": "draft"}).json()["results"]] == ["RTR-9"]
    assert staff.get(f"{PRODUCTS}{draft.pk}/").json()["sku"] == "RTR-9"


@pytest.mark.parametrize("path", ["", "{pk}/"])
def test_an_unknown_language_is_refused_clearly(people, api_as, router, path):
    response = api_as(people.agent_a).get(PRODUCTS + path.format(pk=router.pk), {"lang": "de", "q": "router"})
    assert response.status_code == 400
    assert response.json() == {"lang": ["Unknown language; one of: en, ru, pl."]}


def test_validate_returns_every_violation_in_the_requested_language(people, api_as, router):
    tv = ProductFactory(sku="TV-1", name="TV box")
    RuleFactory(product=tv, kind=Rule.Kind.EXCLUDES, other=router)
    RuleFactory(product=tv, kind=Rule.Kind.QUANTITY, other=None, max_quantity=1)

    response = api_as(people.agent_a).post(VALIDATE, {
        "items": [{"sku": "TV-1", "quantity": 2}, {"sku": "RTR-1"}], "market": "pl", "lang": "en",
    }, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert body["language"] == "en" and body["market"] == "PL"
    assert {v["rule"]: v["message"] for v in body["violations"]} == {
        "excludes": "TV box (TV-1) cannot be combined with Fibre router (RTR-1).",
        "quantity": "TV box (TV-1) allows a quantity of at most 1 (asked for 2).",
    }
    assert set(body["violations"][0]) == {"rule", "rule_id", "products", "message"}


def test_validate_with_a_customer_uses_what_they_own(people, api_as, router):
    from tests.catalog.factories import OwnedProductFactory

    mesh = ProductFactory(sku="MESH-1", name="Mesh", kind=Product.Kind.ADDON)
    RuleFactory(product=mesh, kind=Rule.Kind.REQUIRES, other=router)
    OwnedProductFactory(customer=people.customer, product=router)
    api = api_as(people.agent_a)
    assert api.post(VALIDATE, {"items": [{"sku": "MESH-1"}], "customer": people.customer.pk}, format="json").json()["valid"]
    assert not api.post(VALIDATE, {"items": [{"sku": "MESH-1"}], "customer": people.other_customer.pk}, format="json").json()["valid"]


@pytest.mark.parametrize(("payload", "errors"), [
    ({}, {"items": ["This field is required."]}),
    ({"items": []}, {"items": {"non_field_errors": ["This list may not be empty."]}}),
    ({"items": [{"sku": "RTR-1"}, {"sku": "NOPE"}]}, {"items": {"1": {"sku": ["Unknown SKU NOPE."]}}}),
    ({"items": [{"sku": "RTR-1", "quantity": 0}]}, {"items": {"0": {"quantity": ["Ensure this value is greater than or equal to 1."]}}}),
    ({"items": [{"sku": "RTR-1"}], "customer": 999999}, {"customer": ["Unknown customer."]}),
    ({"items": [{"sku": "RTR-1"}], "lang": "xx"}, {"lang": ['"xx" is not a valid choice.']}),
    ({"items": [{"sku": "RTR-1"}], "market": "P L"}, {"market": ["This value does not match the required pattern."]}),
])
def test_validate_rejects_bad_input_with_field_errors(people, api_as, router, payload, errors):
    response = api_as(people.agent_a).post(VALIDATE, payload, format="json")
    assert response.status_code == 400
    assert response.json() == errors
