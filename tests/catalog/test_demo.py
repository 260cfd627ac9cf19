"""The demo catalog that `manage.py demo_data` loads (catalog/demo.py)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from catalog.models import OwnedProduct, Product, Rule
from catalog.services import validate_configuration

pytestmark = pytest.mark.django_db


def test_demo_data_loads_a_catalog_once_with_products_the_demo_customers_own():
    out = io.StringIO()
    call_command("demo_data", stdout=out)
    assert "Demo catalog created:" in out.getvalue()
    products, rules, owned = Product.objects.count(), Rule.objects.count(), OwnedProduct.objects.count()
    assert products >= 9 and rules >= 5 and owned >= 20
    owner = OwnedProduct.objects.filter(product__sku__startswith="PLAN-").select_related("customer").first().customer
    assert owner.attributes["market"] in {"PL", "RU", "GB"}
    assert f"PLAN-{owner.attributes['plan'].upper()}" in set(OwnedProduct.objects.filter(customer=owner).values_list("product__sku", flat=True))

    again = io.StringIO()
    call_command("demo_data", stdout=again)
    assert "Demo catalog created:" not in again.getvalue()
    assert (Product.objects.count(), Rule.objects.count(), OwnedProduct.objects.count()) == (products, rules, owned)

    sport, basic, ip = (Product.objects.get(sku=s) for s in ("TV-SPORT", "PLAN-BASIC", "STATIC-IP"))
    result = validate_configuration(items=[(sport, 1), (basic, 1), (ip, 1)], market="PL", language="en")
    assert [v.rule for v in result.violations] == ["requires", "excludes"]
