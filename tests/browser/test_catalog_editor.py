"""The catalog in a real browser: an admin creates products, adds a rule and sees a configuration
checked against it (htmx under the strict CSP); an agent finds a product from a ticket and inserts
its channel variant into the reply."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from catalog.models import Product, Rule
from tests.browser.test_live_inbox import sign_in
from tests.catalog.factories import ProductFactory
from tests.factories import TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]


def test_admin_creates_a_product_adds_a_rule_and_sees_it_validated(asgi_server, people, page):
    ProductFactory(sku="RTR-1", name="Fibre router")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, "admin")
    page.wait_for_url("**/app/")

    page.goto("/app/admin/catalog/")
    page.get_by_role("link", name="New product").click()
    page.get_by_label("SKU").fill("MESH-1")
    page.get_by_label("Kind").select_option("addon")
    page.get_by_label("Status").select_option("active")
    page.get_by_label("Name (English)").fill("Mesh extender")
    page.get_by_label("Short variant for SMS, WhatsApp, chat (English)").fill("Mesh for every room")
    page.get_by_label("Name (Русский)").fill("Усилитель Mesh")
    page.get_by_label("Prices").fill("PL PLN 99.00")
    page.get_by_role("button", name="Save product").click()

    expect(page.get_by_text("Product MESH-1 saved.")).to_be_visible()
    product = Product.objects.get(sku="MESH-1")
    assert dict(product.texts.values_list("language", "name")) == {"en": "Mesh extender", "ru": "Усилитель Mesh"}

    rules = page.locator("#rules")
    rules.get_by_label("Rule").select_option("requires")
    rules.get_by_label("Other product (SKU)").fill("RTR-1")
    rules.get_by_role("button", name="Add rule").click()
    expect(page.locator("#rules li[data-rule='requires']")).to_contain_text("RTR-1")
    assert Rule.objects.filter(product=product, kind="requires", other__sku="RTR-1").exists()
    assert page.url.endswith(f"/app/admin/catalog/products/{product.pk}/")  # htmx swapped the fragment in place

    page.get_by_label("Configuration").fill("MESH-1 2")
    page.get_by_label("Market").fill("PL")
    page.get_by_label("Explain in").select_option("en")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#check-result")).to_contain_text(
        "Mesh extender (MESH-1) requires Fibre router (RTR-1); add Fibre router (RTR-1) to the configuration."
    )

    page.get_by_label("Configuration").fill("MESH-1\nRTR-1")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#check-result")).to_contain_text("This configuration follows every rule.")
    expect(page.locator(".changes")).to_contain_text("MESH-1 requires RTR-1")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e]


def test_agent_inserts_a_product_into_the_reply(asgi_server, people, page):
    product = ProductFactory(sku="RTR-1", name="Fibre router")
    product.texts.update(full="Fibre router: 1 Gbit/s and Wi-Fi 6.")
    ticket = TicketFactory(customer=people.customer, team=people.team_a, subject="Which router?")
    sign_in(page, "agent_a")
    page.wait_for_url("**/app/")

    page.goto(f"/app/tickets/{ticket.pk}/")
    page.get_by_label("Search products").fill("fibre routr")
    hit = page.locator(".catalog-hit", has_text="RTR-1")
    expect(hit).to_be_visible()
    page.locator("[data-composer-text]").fill("Hello! ")
    hit.get_by_role("button", name="Insert").click()

    expect(page.locator("[data-composer-text]")).to_have_value("Hello! Fibre router: Fibre router: 1 Gbit/s and Wi-Fi 6.")
