"""Every write to the catalog and its domain rules: configuration validation, offer eligibility,
and the audited edits admins make (each write records a ChangeLog row)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from catalog.models import (
    Category,
    ChangeLog,
    ExclusiveGroup,
    Offer,
    OwnedProduct,
    Product,
    ProductImage,
    ProductPrice,
    ProductText,
    Rule,
)
from catalog.search import search_words_add
from catalog.selectors import customer_market, normalize_language, owned_product_ids, product_text_for
from omnicenter.errors import DomainError

# ---------------------------------------------------------------------------------------------
# Configuration validation


@dataclass(frozen=True)
class Violation:
    rule: str  # "unavailable", "market", "requires", "excludes", "compatible", "quantity", "group", "base"
    products: tuple[str, ...]  # SKUs involved
    message: str  # explained in the requested language
    rule_id: int | None = None

    def as_dict(self) -> dict:
        return {"rule": self.rule, "rule_id": self.rule_id, "products": list(self.products), "message": self.message}


@dataclass
class ValidationResult:
    language: str
    market: str
    violations: list[Violation] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.violations


def validate_configuration(
    *, items: Sequence[tuple[Product, int]], customer=None, market: str = "", language: str | None = None,
) -> ValidationResult:
    """Check a proposed configuration (products with quantities) against every rule and return each
    broken rule with an explanation in ``language`` (default: the active language).

    Products the customer already owns (active) satisfy "requires" and "compatible with" rules, and
    count against "excludes". ``market`` defaults to the customer's market; with a market, every
    product must have a price there. Reads a fixed number of queries whatever the size.
    """
    language = normalize_language(language) or normalize_language(translation.get_language()) or "en"
    market = (market or customer_market(customer)).upper()
    quantities: dict[int, int] = defaultdict(int)
    products: dict[int, Product] = {}
    for product, quantity in items:
        quantities[product.pk] += quantity
        products[product.pk] = product
    owned = owned_product_ids(customer)
    result = ValidationResult(language=language, market=market)
    if not products:
        return result

    ids = set(products)
    # An "excludes" rule binds both ways: one on a product the customer owns counts against this one.
    rules = list(Rule.objects.filter(
        Q(product_id__in=ids) | Q(kind=Rule.Kind.EXCLUDES, product_id__in=owned - ids, other_id__in=ids),
    ).select_related("other").prefetch_related("other__texts"))
    groups = list(ExclusiveGroup.objects.filter(products__in=ids).distinct().prefetch_related("products"))
    priced = set(ProductPrice.objects.filter(product_id__in=ids, market=market).values_list("product_id", flat=True)) if market else ids
    base_owned = set(Product.objects.filter(pk__in=owned, kind=Product.Kind.PRODUCT).values_list("pk", flat=True)) if owned else set()
    texts = {p.pk: p for p in Product.objects.filter(pk__in=ids | owned).prefetch_related("texts")}
    for rule in rules:
        if rule.other_id:
            texts.setdefault(rule.other_id, rule.other)

    with translation.override(language):
        def label(product_id: int) -> str:
            product = texts[product_id]
            return f"{product_text_for(product, language=language).name} ({product.sku})"

        def add(rule: str, product_ids: Iterable[int], message: str, rule_id: int | None = None) -> None:
            result.violations.append(Violation(rule, tuple(texts[i].sku for i in product_ids), message, rule_id))

        for pk in sorted(ids, key=lambda i: texts[i].sku):
            product = texts[pk]
            if product.status != Product.Status.ACTIVE:
                add("unavailable", [pk], _("%(product)s is not available.") % {"product": label(pk)})
            if pk not in priced:
                add("market", [pk], _("%(product)s is not sold in market %(market)s.") % {"product": label(pk), "market": market})
            if product.kind != Product.Kind.PRODUCT and not (
                any(texts[i].kind == Product.Kind.PRODUCT for i in ids) or base_owned
            ):
                add("base", [pk], _("%(product)s is an option or add-on and needs a main product in the configuration.")
                    % {"product": label(pk)})

        present = ids | owned
        compatible: dict[int, list[Rule]] = defaultdict(list)
        for rule in rules:
            pk = rule.product_id
            if rule.kind == Rule.Kind.REQUIRES and rule.other_id not in present:
                add("requires", [pk, rule.other_id],
                    _("%(product)s requires %(other)s; add %(other)s to the configuration.")
                    % {"product": label(pk), "other": label(rule.other_id)}, rule.pk)
            elif rule.kind == Rule.Kind.EXCLUDES and pk not in ids:  # pk is owned, other proposed
                add("excludes", [rule.other_id, pk],
                    _("%(product)s cannot be combined with %(other)s, which the customer already owns.")
                    % {"product": label(rule.other_id), "other": label(pk)}, rule.pk)
            elif rule.kind == Rule.Kind.EXCLUDES and rule.other_id in ids:
                add("excludes", [pk, rule.other_id], _("%(product)s cannot be combined with %(other)s.")
                    % {"product": label(pk), "other": label(rule.other_id)}, rule.pk)
            elif rule.kind == Rule.Kind.EXCLUDES and rule.other_id in owned:
                add("excludes", [pk, rule.other_id],
                    _("%(product)s cannot be combined with %(other)s, which the customer already owns.")
                    % {"product": label(pk), "other": label(rule.other_id)}, rule.pk)
            elif rule.kind == Rule.Kind.COMPATIBLE:
                compatible[pk].append(rule)
            elif rule.kind == Rule.Kind.QUANTITY:
                quantity = quantities[pk]
                if rule.min_quantity is not None and quantity < rule.min_quantity:
                    add("quantity", [pk], _("%(product)s needs a quantity of at least %(min)s (asked for %(quantity)s).")
                        % {"product": label(pk), "min": rule.min_quantity, "quantity": quantity}, rule.pk)
                if rule.max_quantity is not None and quantity > rule.max_quantity:
                    add("quantity", [pk], _("%(product)s allows a quantity of at most %(max)s (asked for %(quantity)s).")
                        % {"product": label(pk), "max": rule.max_quantity, "quantity": quantity}, rule.pk)
        for pk, product_rules in compatible.items():
            if not any(rule.other_id in present for rule in product_rules):
                others = sorted(product_rules, key=lambda r: r.other.sku)
                add("compatible", [pk, *(r.other_id for r in others)], _("%(product)s works only with one of: %(others)s.")
                    % {"product": label(pk), "others": ", ".join(label(r.other_id) for r in others)})
        for group in groups:
            chosen = sorted((p for p in group.products.all() if p.pk in ids), key=lambda p: p.sku)
            if len(chosen) > 1:
                add("group", [p.pk for p in chosen], _("Choose only one of “%(group)s”: %(products)s.")
                    % {"group": group.name, "products": ", ".join(label(p.pk) for p in chosen)})
    return result


# ---------------------------------------------------------------------------------------------
# Offer eligibility


def offer_eligibility(*, offer: Offer, customer, on: dt.date | None = None, language: str | None = None) -> list[str]:
    """Why ``customer`` may not take ``offer`` on ``on`` (today by default); empty when eligible."""
    on = on or timezone.localdate()
    language = normalize_language(language) or normalize_language(translation.get_language()) or "en"
    reasons = []
    with translation.override(language):
        if not offer.active:
            reasons.append(_("The offer is not active."))
        if offer.valid_from and on < offer.valid_from:
            reasons.append(_("The offer starts on %(date)s.") % {"date": offer.valid_from.isoformat()})
        if offer.valid_until and on > offer.valid_until:
            reasons.append(_("The offer ended on %(date)s.") % {"date": offer.valid_until.isoformat()})
        if offer.lifecycle_stages and customer.lifecycle_stage not in offer.lifecycle_stages:
            reasons.append(_("The offer is for customers at another lifecycle stage (%(stages)s).")
                           % {"stages": ", ".join(offer.lifecycle_stages)})
        market = customer_market(customer)
        if offer.markets and market not in offer.markets:
            reasons.append(_("The offer is not available in the customer's market (%(markets)s).")
                           % {"markets": ", ".join(offer.markets)})
        owned = owned_product_ids(customer)
        needed = list(offer.requires_owned.all())
        if needed and not owned & {p.pk for p in needed}:
            reasons.append(_("The customer must already own one of: %(products)s.")
                           % {"products": ", ".join(sorted(p.sku for p in needed))})
        blocking = sorted(p.sku for p in offer.excludes_owned.all() if p.pk in owned)
        if blocking:
            reasons.append(_("The customer already owns %(products)s.") % {"products": ", ".join(blocking)})
    return reasons


def offers_for_customer(*, customer, on: dt.date | None = None) -> list[Offer]:
    offers = Offer.objects.filter(active=True).prefetch_related("requires_owned", "excludes_owned", "products")
    return [offer for offer in offers if not offer_eligibility(offer=offer, customer=customer, on=on)]


# ---------------------------------------------------------------------------------------------
# Audited writes


class CatalogError(DomainError):
    code = "catalog_invalid"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _log(*, by, action: str, obj, product: Product | None = None, changes: dict | None = None) -> ChangeLog:
    return ChangeLog.objects.create(
        actor=by if getattr(by, "is_authenticated", False) else None, action=action,
        object_type=obj._meta.model_name, object_id=str(obj.pk), object_repr=str(obj)[:200],
        product=product, changes=changes or {},
    )


def _apply(obj, values: dict) -> dict:
    """Set fields and return what changed as {"field": [old, new]} (strings)."""
    changed = {}
    for name, value in values.items():
        try:
            old = getattr(obj, name)
        except ObjectDoesNotExist:  # a new row's foreign key that is not set yet
            old = None
        if _text(old) != _text(value):
            changed[name] = [_text(old), _text(value)]
            setattr(obj, name, value)
    return changed


PRODUCT_FIELDS = ("sku", "kind", "status", "category", "source_language")
TEXT_FIELDS = ("name", "description", "short", "full")


@transaction.atomic
def product_save(*, product: Product | None, by, values: dict, texts: dict[str, dict] | None = None,
                 prices: list[dict] | None = None) -> Product:
    """Create (``product=None``) or change a product with its texts per language and, when
    given, its complete price list (rows not listed are removed). ``values`` may name the
    category by ``category_name``. Records every change."""
    creating = product is None
    product = product or Product()
    if "category_name" in values:  # by name: created when new
        values = dict(values)
        name = (values.pop("category_name") or "").strip()[:120]
        values["category"] = Category.objects.get_or_create(name=name)[0] if name else None
    sku = values.get("sku", product.sku)
    if Product.objects.filter(sku=sku).exclude(pk=product.pk).exists():
        raise CatalogError(_("A product with SKU %(sku)s already exists.") % {"sku": sku})
    changes = _apply(product, {k: v for k, v in values.items() if k in PRODUCT_FIELDS})
    if creating or changes:
        product.save()
    for language, fields in (texts or {}).items():
        text = product.texts.filter(language=language).first() if not creating else None
        if not any((fields.get(f) or "").strip() for f in TEXT_FIELDS):
            if text is not None:
                text.delete()
                changes[f"text[{language}]"] = ["…", ""]
            continue
        if not (fields.get("name") or "").strip():
            raise CatalogError(_("The %(language)s translation needs a name.") % {"language": language})
        text = text or ProductText(product=product, language=language)
        changed = _apply(text, {f: (fields.get(f) or "").strip() for f in TEXT_FIELDS})
        if changed or text.pk is None:
            text.save()
            changes.update({f"{name}[{language}]": value for name, value in changed.items()})
            search_words_add([text.name, text.description])
    if prices is not None:
        changes.update(_prices_replace(product=product, prices=prices))
    if creating:
        _log(by=by, action=ChangeLog.Action.CREATE, obj=product, product=product, changes=changes)
    elif changes:
        _log(by=by, action=ChangeLog.Action.UPDATE, obj=product, product=product, changes=changes)
    return product


@transaction.atomic
def product_image_add(*, product: Product, by, file, alt: str = "") -> ProductImage:
    image = ProductImage(product=product, alt=alt, position=product.images.count())
    image.file.save(file.name, file, save=True)
    _log(by=by, action=ChangeLog.Action.UPDATE, obj=product, product=product, changes={"image": ["", image.file.name]})
    return image


def _prices_replace(*, product: Product, prices: list[dict]) -> dict:
    existing = {(p.market, p.currency): p for p in product.prices.all()}
    wanted = {}
    for row in prices:
        key = (row["market"].upper(), row["currency"].upper())
        if key in wanted:
            raise CatalogError(_("Two prices for market %(market)s in %(currency)s.") % {"market": key[0], "currency": key[1]})
        wanted[key] = Decimal(row["amount"])
    changes = {}
    for key, price in existing.items():
        if key not in wanted:
            price.delete()
            changes[f"price[{key[0]} {key[1]}]"] = [_text(price.amount), ""]
    for key, amount in wanted.items():
        price = existing.get(key)
        if price is None:
            ProductPrice.objects.create(product=product, market=key[0], currency=key[1], amount=amount)
            changes[f"price[{key[0]} {key[1]}]"] = ["", _text(amount)]
        elif price.amount != amount:
            changes[f"price[{key[0]} {key[1]}]"] = [_text(price.amount), _text(amount)]
            price.amount = amount
            price.save(update_fields=["amount"])
    return changes


@transaction.atomic
def rule_create(*, product: Product, kind: str, by, other: Product | None = None,
                min_quantity: int | None = None, max_quantity: int | None = None) -> Rule:
    if kind == Rule.Kind.QUANTITY:
        if min_quantity is None and max_quantity is None:
            raise CatalogError(_("A quantity rule needs a minimum, a maximum or both."))
        if min_quantity is not None and max_quantity is not None and min_quantity > max_quantity:
            raise CatalogError(_("The minimum quantity is above the maximum."))
        if Rule.objects.filter(product=product, kind=kind).exists():
            raise CatalogError(_("%(sku)s already has a quantity rule; delete it first.") % {"sku": product.sku})
        other = None
    else:
        if other is None:
            raise CatalogError(_("Choose the other product of the rule."))
        if other.pk == product.pk:
            raise CatalogError(_("A rule cannot name the product itself."))
        if Rule.objects.filter(product=product, kind=kind, other=other).exists():
            raise CatalogError(_("This rule exists already."))
        min_quantity = max_quantity = None
    rule = Rule.objects.create(product=product, kind=kind, other=other, min_quantity=min_quantity, max_quantity=max_quantity)
    _log(by=by, action=ChangeLog.Action.CREATE, obj=rule, product=product, changes={
        "rule": ["", _describe_rule(rule)],
    })
    return rule


def _describe_rule(rule: Rule) -> str:
    if rule.kind == Rule.Kind.QUANTITY:
        return f"{rule.product.sku} quantity {rule.min_quantity or 0}..{rule.max_quantity or '∞'}"
    return f"{rule.product.sku} {rule.kind} {rule.other.sku}"


@transaction.atomic
def rule_delete(*, rule: Rule, by) -> None:
    description = _describe_rule(rule)
    _log(by=by, action=ChangeLog.Action.DELETE, obj=rule, product=rule.product, changes={"rule": [description, ""]})
    rule.delete()


@transaction.atomic
def group_save(*, group: ExclusiveGroup | None, by, name: str, products: Sequence[Product]) -> ExclusiveGroup:
    creating = group is None
    group = group or ExclusiveGroup()
    if ExclusiveGroup.objects.filter(name=name).exclude(pk=group.pk).exists():
        raise CatalogError(_("A group named %(name)s already exists.") % {"name": name})
    before = "" if creating else ", ".join(sorted(p.sku for p in group.products.all()))
    changes = _apply(group, {"name": name})
    group.save()
    group.products.set(products)
    after = ", ".join(sorted(p.sku for p in products))
    if before != after:
        changes["products"] = [before, after]
    if creating or changes:
        _log(by=by, action=ChangeLog.Action.CREATE if creating else ChangeLog.Action.UPDATE, obj=group, changes=changes)
    return group


@transaction.atomic
def group_delete(*, group: ExclusiveGroup, by) -> None:
    _log(by=by, action=ChangeLog.Action.DELETE, obj=group, changes={"name": [group.name, ""]})
    group.delete()


OFFER_FIELDS = ("code", "kind", "name", "terms", "valid_from", "valid_until", "lifecycle_stages", "markets", "active")


@transaction.atomic
def offer_save(*, offer: Offer | None, by, values: dict, products: Sequence[Product] = (),
               requires_owned: Sequence[Product] = (), excludes_owned: Sequence[Product] = ()) -> Offer:
    creating = offer is None
    offer = offer or Offer()
    if Offer.objects.filter(code=values["code"]).exclude(pk=offer.pk).exists():
        raise CatalogError(_("An offer with code %(code)s already exists.") % {"code": values["code"]})
    if values.get("valid_from") and values.get("valid_until") and values["valid_until"] < values["valid_from"]:
        raise CatalogError(_("The offer ends before it starts."))
    changes = _apply(offer, {k: v for k, v in values.items() if k in OFFER_FIELDS})
    offer.save()
    for name, chosen in (("products", products), ("requires_owned", requires_owned), ("excludes_owned", excludes_owned)):
        related = getattr(offer, name)
        before = "" if creating else ", ".join(sorted(p.sku for p in related.all()))
        related.set(chosen)
        after = ", ".join(sorted(p.sku for p in chosen))
        if before != after:
            changes[name] = [before, after]
    if creating or changes:
        _log(by=by, action=ChangeLog.Action.CREATE if creating else ChangeLog.Action.UPDATE, obj=offer, changes=changes)
    return offer


OWNED_FIELDS = ("product", "reference", "start_date", "end_date", "status")


@transaction.atomic
def owned_product_save(*, owned: OwnedProduct | None, by, customer, values: dict) -> OwnedProduct:
    creating = owned is None
    owned = owned or OwnedProduct(customer=customer)
    if values.get("start_date") and values.get("end_date") and values["end_date"] < values["start_date"]:
        raise CatalogError(_("The end date is before the start date."))
    changes = _apply(owned, {k: v for k, v in values.items() if k in OWNED_FIELDS})
    owned.save()
    if creating or changes:
        _log(by=by, action=ChangeLog.Action.CREATE if creating else ChangeLog.Action.UPDATE, obj=owned,
             product=owned.product, changes={"customer": ["", str(customer.pk)], **changes} if creating else changes)
    return owned


@transaction.atomic
def owned_product_delete(*, owned: OwnedProduct, by) -> None:
    _log(by=by, action=ChangeLog.Action.DELETE, obj=owned, product=owned.product,
         changes={"customer": [str(owned.customer_id), ""], "product": [owned.product.sku, ""]})
    owned.delete()


def record_import(*, by, count: int, fmt: str) -> None:
    ChangeLog.objects.create(
        actor=by if getattr(by, "is_authenticated", False) else None, action=ChangeLog.Action.IMPORT,
        object_type="product", object_id="-", object_repr=f"{count} products ({fmt})", changes={"rows": ["", str(count)]},
    )

