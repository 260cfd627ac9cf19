"""Reads of the catalog that several callers share: the text a channel gets, a customer's market,
the products a customer owns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from django.db import connection
from django.db.models import Prefetch, QuerySet

from catalog.models import (
    SHORT_CHANNELS,
    TEXT_LANGUAGES,
    OwnedProduct,
    Product,
    ProductImage,
    ProductPrice,
    ProductText,
)

LANGUAGE_CODES = tuple(code for code, _name in TEXT_LANGUAGES)


@dataclass(frozen=True)
class ServedText:
    """What one channel and language get for a product, and what was actually served."""

    name: str
    text: str
    language: str  # the translation served (the requested one, or the fallback)
    variant: str  # "short", "full" or "description" (the variant was empty: the main description)
    requested_language: str
    channel: str


def variant_for_channel(channel: str) -> str:
    return "short" if channel in SHORT_CHANNELS else "full"


def normalize_language(language: str | None) -> str:
    code = (language or "").lower().split("-")[0]
    return code if code in LANGUAGE_CODES else ""


def product_text_for(product: Product, *, language: str | None, channel: str = "") -> ServedText:
    """The product's text for a channel in a language, falling back to the source language and
    from the channel's variant to the main description. Uses ``product.texts.all()`` (prefetch it)."""
    return served_text({text.language: text for text in product.texts.all()}, sku=product.sku,
                       source_language=product.source_language, language=language, channel=channel)


def served_text(texts: dict, *, sku: str, source_language: str, language: str | None, channel: str = "") -> ServedText:
    """``product_text_for`` over texts by language (in language order), each with ``language``,
    ``name``, ``description``, ``short`` and ``full``: model instances or plain rows alike."""
    wanted = normalize_language(language) or source_language
    chosen = texts.get(wanted) or texts.get(source_language) or next(iter(texts.values()), None)
    variant = variant_for_channel(channel)
    if chosen is None:
        return ServedText(sku, "", "", "description", wanted, channel)
    body = getattr(chosen, variant)
    if not body.strip():
        body, variant = chosen.description, "description"
    return ServedText(chosen.name, body, chosen.language, variant, wanted, channel)


@dataclass(frozen=True)
class ProductRow:
    """A product with what the API shows of it, read as plain values (no model instances)."""

    id: int
    sku: str
    kind: str
    status: str
    source_language: str
    updated_at: datetime
    category: str | None
    texts: dict[str, SimpleNamespace]  # by language, in language order
    prices: list[dict]  # {"market", "currency", "amount"}, by market and currency
    images: list[dict]  # {"id", "alt"}, by position


_ROWS_SQL = """
SELECT p.id, p.sku, p.kind, p.status, p.source_language, p.updated_at, c.name,
    (SELECT json_agg(json_build_object('language', t.language, 'name', t.name, 'description', t.description,
                                       'short', t.short, 'full', t.full) ORDER BY t.language)
     FROM catalog_producttext t WHERE t.product_id = p.id),
    (SELECT json_agg(json_build_object('market', pr.market, 'currency', pr.currency, 'amount', pr.amount::text)
                     ORDER BY pr.market, pr.currency)
     FROM catalog_productprice pr WHERE pr.product_id = p.id),
    (SELECT json_agg(json_build_object('id', i.id, 'alt', i.alt) ORDER BY i.position, i.id)
     FROM catalog_productimage i WHERE i.product_id = p.id)
FROM catalog_product p LEFT JOIN catalog_category c ON c.id = p.category_id
WHERE p.id = ANY(%s)
"""


def _json(value) -> list:
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value


def product_rows(ids: list[int]) -> dict[int, ProductRow]:
    """These products by id, with their texts, prices and images: one statement on PostgreSQL
    (texts, prices and images as JSON arrays), four elsewhere. A page of 20 products as model
    instances with three prefetches cost more Python than the search statement took
    (docs/performance.md)."""
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_ROWS_SQL, [list(ids)])
            rows = cursor.fetchall()
        return {
            row[0]: ProductRow(*row[:7], texts={t["language"]: SimpleNamespace(**t) for t in _json(row[7])},
                               prices=_json(row[8]), images=_json(row[9]))
            for row in rows
        }
    texts: dict[int, dict] = {}
    for values in ProductText.objects.filter(product_id__in=ids).order_by("language").values(
            "product_id", "language", "name", "description", "short", "full"):
        texts.setdefault(values.pop("product_id"), {})[values["language"]] = SimpleNamespace(**values)
    prices: dict[int, list] = {}
    for product_id, market, currency, amount in ProductPrice.objects.filter(product_id__in=ids).order_by(
            "market", "currency").values_list("product_id", "market", "currency", "amount"):
        prices.setdefault(product_id, []).append({"market": market, "currency": currency, "amount": format(amount, "f")})
    images: dict[int, list] = {}
    for product_id, image_id, alt in ProductImage.objects.filter(product_id__in=ids).order_by(
            "position", "pk").values_list("product_id", "pk", "alt"):
        images.setdefault(product_id, []).append({"id": image_id, "alt": alt})
    return {
        values[0]: ProductRow(*values, texts=texts.get(values[0], {}), prices=prices.get(values[0], []),
                              images=images.get(values[0], []))
        for values in Product.objects.filter(pk__in=ids).values_list(
            "pk", "sku", "kind", "status", "source_language", "updated_at", "category__name")
    }


def products_with_texts() -> QuerySet[Product]:
    return Product.objects.select_related("category").prefetch_related(
        Prefetch("texts", queryset=ProductText.objects.order_by("language")),
        Prefetch("prices", queryset=ProductPrice.objects.order_by("market", "currency")),
        "images",
    )


def existing_skus(skus: list[str]) -> set[str]:
    """Which of these SKUs are catalog products (any status)."""
    return set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True)) if skus else set()


def active_products_named(skus: list[str], *, language: str | None, channel: str = "") -> list[tuple[str, ServedText]]:
    """The active products among these SKUs, in the order given, each with its text for
    ``language`` and ``channel``: what a public page may show of an article's related products.
    No query when there is no SKU."""
    if not skus:
        return []
    products = {p.sku: p for p in Product.objects.filter(sku__in=skus, status=Product.Status.ACTIVE).prefetch_related(
        Prefetch("texts", queryset=ProductText.objects.order_by("language")))}
    return [(sku, product_text_for(products[sku], language=language, channel=channel)) for sku in skus if sku in products]


def customer_market(customer) -> str:
    """A customer's market code, kept in ``Customer.attributes["market"]`` (no column of its own yet)."""
    value = (customer.attributes or {}).get("market") if customer is not None else None
    return str(value).upper() if isinstance(value, str) else ""


def owned_products(customer, *, active_only: bool = False) -> QuerySet[OwnedProduct]:
    queryset = OwnedProduct.objects.filter(customer=customer).select_related("product").prefetch_related("product__texts")
    if active_only:
        queryset = queryset.filter(status=OwnedProduct.Status.ACTIVE)
    return queryset.order_by("status", "-start_date", "-pk")


def owned_product_ids(customer) -> set[int]:
    if customer is None:
        return set()
    return set(
        OwnedProduct.objects.filter(customer=customer, status=OwnedProduct.Status.ACTIVE).values_list("product_id", flat=True)
    )
