"""The catalog editor at /app/admin/catalog/: admins only, audited edits, rules, checks, panels."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import ChangeLog, OwnedProduct, Product, Rule
from channels_inbound.models import Channel
from tests.catalog.factories import OwnedProductFactory, ProductFactory, RuleFactory
from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/app/admin/catalog/", "/app/admin/catalog/products/new/", "/app/admin/catalog/offers/", "/app/admin/catalog/offers/new/",
    "/app/admin/catalog/groups/", "/app/admin/catalog/owners/", "/app/admin/catalog/check/", "/app/admin/catalog/transfer/",
    "/app/admin/catalog/audit/", "/app/admin/catalog/export.csv", "/app/admin/catalog/export.json",
]


def product_post(**overrides) -> dict:
    data = {
        "sku": "RTR-9", "kind": "product", "status": "active", "category": "Routers", "source_language": "en",
        "name_en": "Fibre router", "description_en": "For fibre.", "short_en": "Router 1G", "full_en": "",
        "name_ru": "Роутер", "description_ru": "", "short_ru": "", "full_ru": "",
        "name_pl": "", "description_pl": "", "short_pl": "", "full_pl": "",
        "prices": "PL PLN 199.00\nde eur 45.5",
    }
    return {**data, **overrides}


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_only_admins_open_catalog_screens(client, people, url):
    assert client.get(url).status_code == 302  # anonymous: to the sign-in page
    for persona in (people.agent_a, people.supervisor):
        client.force_login(persona)
        assert client.get(url).status_code == 403
    client.force_login(people.admin)
    response = client.get(url)
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_non_admins_cannot_change_anything(client, people):
    product = ProductFactory(sku="RTR-1")
    client.force_login(people.agent_a)
    assert client.post("/app/admin/catalog/products/new/", product_post()).status_code == 403
    assert client.post(f"/app/admin/catalog/products/{product.pk}/", product_post(sku="HACKED")).status_code == 403
    assert client.post(f"/app/admin/catalog/products/{product.pk}/rules/", {"kind": "quantity", "max_quantity": 1}).status_code == 403
    assert client.post(f"/app/admin/catalog/owners/{people.customer.pk}/", {"product": "RTR-1", "status": "active"}).status_code == 403
    assert list(Product.objects.values_list("sku", flat=True)) == ["RTR-1"]
    assert not Rule.objects.exists() and not OwnedProduct.objects.exists() and not ChangeLog.objects.exists()


def test_admin_creates_a_product_with_translations_and_prices_and_it_is_audited(client, people):
    client.force_login(people.admin)

    response = client.post("/app/admin/catalog/products/new/", product_post())

    product = Product.objects.get(sku="RTR-9")
    assert response.status_code == 302 and response["Location"] == f"/app/admin/catalog/products/{product.pk}/"
    assert dict(product.texts.values_list("language", "name")) == {"en": "Fibre router", "ru": "Роутер"}
    assert sorted((p.market, p.currency, str(p.amount)) for p in product.prices.all()) == [("DE", "EUR", "45.50"), ("PL", "PLN", "199.00")]
    assert product.category.name == "Routers"
    log = ChangeLog.objects.get()
    assert (log.actor, log.action, log.product) == (people.admin, "create", product)
    assert log.changes["name[en]"] == ["", "Fibre router"] and log.changes["price[PL PLN]"] == ["", "199.00"]

    client.post(f"/app/admin/catalog/products/{product.pk}/", product_post(prices="PL PLN 149.00", name_ru=""))
    change = ChangeLog.objects.filter(action="update").get()
    assert change.changes == {"text[ru]": ["…", ""], "price[DE EUR]": ["45.50", ""], "price[PL PLN]": ["199.00", "149.00"]}
    page = client.get(f"/app/admin/catalog/products/{product.pk}/").content.decode()
    assert "Who changed what and when" in page and "149.00" in page and people.admin.username in page


@pytest.mark.parametrize(("overrides", "error"), [
    ({"sku": "bad sku!"}, "Letters, digits and . _ / - only."),
    ({"name_en": ""}, "A name in the source language is required."),
    ({"prices": "PL PLN -3"}, "Line 1: write market, currency and amount"),
    ({"prices": "PL PLN 1.999"}, "Line 1: write market, currency and amount"),
    ({"short_pl": "Krótki"}, "This translation needs a name."),
])
def test_bad_product_input_is_explained_and_changes_nothing(client, people, overrides, error):
    client.force_login(people.admin)
    response = client.post("/app/admin/catalog/products/new/", product_post(**overrides))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Product.objects.exists() and not ChangeLog.objects.exists()


def test_duplicate_sku_is_refused(client, people):
    ProductFactory(sku="RTR-9")
    client.force_login(people.admin)
    response = client.post("/app/admin/catalog/products/new/", product_post())
    assert response.status_code == 400
    assert "A product with SKU RTR-9 already exists." in response.content.decode()


def test_rules_are_added_and_deleted_through_htmx_with_an_audit_trail(client, people):
    router, tv = ProductFactory(sku="RTR-1"), ProductFactory(sku="TV-1")
    client.force_login(people.admin)
    url = f"/app/admin/catalog/products/{tv.pk}/rules/"

    fragment = client.post(url, {"kind": "requires", "other": "rtr-1"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert 'data-rule="requires"' in fragment.content.decode()
    rule = Rule.objects.get()
    assert (rule.product, rule.kind, rule.other) == (tv, "requires", router)

    duplicate = client.post(url, {"kind": "requires", "other": "RTR-1"}, HTTP_HX_REQUEST="true")
    assert duplicate.status_code == 400 and "This rule exists already." in duplicate.content.decode()
    assert client.post(url, {"kind": "excludes", "other": "NOPE"}, HTTP_HX_REQUEST="true").status_code == 400
    assert client.post(url, {"kind": "quantity"}, HTTP_HX_REQUEST="true").status_code == 400
    assert client.post(url, {"kind": "excludes", "other": "TV-1"}, HTTP_HX_REQUEST="true").status_code == 400
    assert Rule.objects.count() == 1

    client.post(f"{url}{rule.pk}/delete/", HTTP_HX_REQUEST="true")
    assert not Rule.objects.exists()
    assert [c.changes["rule"] for c in ChangeLog.objects.order_by("pk")] == [["", "TV-1 requires RTR-1"], ["TV-1 requires RTR-1", ""]]


def test_the_configuration_check_explains_broken_rules(client, people):
    router, tv = ProductFactory(sku="RTR-1", name="Router"), ProductFactory(sku="TV-1", name="TV box")
    RuleFactory(product=tv, kind=Rule.Kind.REQUIRES, other=router)
    client.force_login(people.admin)

    broken = client.post("/app/admin/catalog/check/run/", {"lines": "tv-1 2", "market": "PL", "language": "en"})
    assert "TV box (TV-1) requires Router (RTR-1); add Router (RTR-1) to the configuration." in broken.content.decode()
    fine = client.post("/app/admin/catalog/check/run/", {"lines": "TV-1\nRTR-1 1", "market": "PL", "language": "en"})
    assert "This configuration follows every rule." in fine.content.decode()
    bad = client.post("/app/admin/catalog/check/run/", {"lines": "TV-1 zero", "language": "en"})
    assert bad.status_code == 400 and "Line 1: write a SKU and a quantity of at least 1." in bad.content.decode()


def test_product_list_queries_are_constant(client, people, django_assert_num_queries):
    client.force_login(people.admin)
    ProductFactory()
    with CaptureQueriesContext(connection) as few:
        client.get("/app/admin/catalog/")
    for _ in range(15):
        RuleFactory(product=ProductFactory(texts={"ru": "Товар"}, markets=["PL", "DE"]), kind=Rule.Kind.QUANTITY, other=None, max_quantity=3)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get("/app/admin/catalog/").status_code == 200


def test_owned_products_are_managed_per_customer_and_show_in_the_sidebar(client, people):
    router = ProductFactory(sku="RTR-1", name="Fibre router", texts={"ru": "Роутер"})
    client.force_login(people.admin)
    url = f"/app/admin/catalog/owners/{people.customer.pk}/"

    response = client.post(url, {"product": "RTR-1", "reference": "SN-42", "start_date": "2026-01-01", "status": "active"})
    assert response.status_code == 302
    assert OwnedProduct.objects.get().reference == "SN-42"
    bad = client.post(url, {"product": "RTR-1", "start_date": "2026-02-01", "end_date": "2026-01-01", "status": "active"})
    assert bad.status_code == 400 and OwnedProduct.objects.count() == 1
    assert "SN-42" in client.get(url).content.decode()

    OwnedProductFactory(customer=people.other_customer, product=router, reference="NOT-ANNAS")
    client.force_login(people.agent_a)
    sidebar = client.get(f"/app/customers/{people.customer.pk}/").content.decode()
    assert "Products owned" in sidebar and "Fibre router" in sidebar and "SN-42" in sidebar
    assert "NOT-ANNAS" not in sidebar
    assert "Edit products owned" not in sidebar  # agents read, admins edit


def test_agent_search_panel_serves_the_channel_variant_of_the_tickets_customer(client, people):
    product = ProductFactory(sku="RTR-1", name="Fibre router", texts={"ru": "Роутер"})
    product.texts.filter(language="ru").update(short="Роутер 1 Гбит/с", full="Полное описание роутера")
    people.customer.language = "ru"
    people.customer.save()
    ticket = TicketFactory(customer=people.customer, team=people.team_a)
    client.force_login(people.agent_a)

    page = client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert f'hx-get="/app/catalog/search/{ticket.pk}/"' in page and "js/catalog.js" in page

    results = client.get(f"/app/catalog/search/{ticket.pk}/", {"q": "роутер"}).content.decode()
    assert 'data-insert-text="Роутер: Полное описание роутера"' in results  # no channel: the full variant

    # A ticket that came by SMS gets the short variant (a demo channel row: no provider involved).
    ticket.origin_channel = Channel.objects.create(kind="sms", name="SMS", settings={"demo": True})
    ticket.save(update_fields=["origin_channel"])
    results = client.get(f"/app/catalog/search/{ticket.pk}/", {"q": "роутер"}).content.decode()
    assert 'data-insert-text="Роутер: Роутер 1 Гбит/с"' in results

    client.force_login(people.agent_b)  # not in the ticket's team
    assert client.get(f"/app/catalog/search/{ticket.pk}/", {"q": "роутер"}).status_code == 404
