"""Reads of the catalog that several callers share: the text a channel gets, a customer's market,
the products a customer owns."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from catalog.models import SHORT_CHANNELS, TEXT_LANGUAGES, OwnedProduct, Product, ProductPrice, ProductText

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
    texts = {text.language: text for text in product.texts.all()}
    wanted = normalize_language(language) or product.source_language
    chosen = texts.get(wanted) or texts.get(product.source_language) or next(iter(texts.values()), None)
    variant = variant_for_channel(channel)
    if chosen is None:
        return ServedText(product.sku, "", "", "description", wanted, channel)
    body = getattr(chosen, variant)
    if not body.strip():
        body, variant = chosen.description, "description"
    return ServedText(chosen.name, body, chosen.language, variant, wanted, channel)


def products_with_texts() -> QuerySet[Product]:
    return Product.objects.select_related("category").prefetch_related(
        Prefetch("texts", queryset=ProductText.objects.order_by("language")),
        Prefetch("prices", queryset=ProductPrice.objects.order_by("market", "currency")),
    )


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
