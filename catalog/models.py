"""The product catalog: products and their texts, prices, offers and plans, configuration rules,
products customers own, and the audit of who changed what.

A customer's market is not a column of ``customers.Customer``: it is read from
``Customer.attributes["market"]`` (a market code such as ``PL``), see ``catalog.selectors.customer_market``.
The lifecycle stage is ``Customer.lifecycle_stage``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from knowledge.languages import SHORT_CHANNELS as KB_SHORT_CHANNELS

# Languages a product text can be written in; the first is the default source language.
TEXT_LANGUAGES = (("en", "English"), ("ru", "Русский"), ("pl", "Polski"))

# Channel kinds that get the short variant, the knowledge base's list; every other kind (email,
# portal, web, api) gets the full one.
SHORT_CHANNELS = KB_SHORT_CHANNELS


class Category(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                               verbose_name=_("parent"))

    class Meta:
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    class Kind(models.TextChoices):
        PRODUCT = "product", _("Product")
        OPTION = "option", _("Option")
        ADDON = "addon", _("Add-on")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.PRODUCT)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products",
                                 verbose_name=_("category"))
    # The language the texts are written in first; other translations fall back to it.
    source_language = models.CharField(_("source language"), max_length=8, choices=TEXT_LANGUAGES, default="en")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        indexes = [models.Index(fields=["status", "sku"])]

    def __str__(self) -> str:
        return self.sku


class ProductText(models.Model):
    """A product's name and description in one language, with its per-channel variants.

    ``short`` is for SMS, WhatsApp and chat; ``full`` for email, the portal and the web. Either
    may be empty: it then falls back to ``description`` (catalog.selectors.product_text_for).
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="texts")
    language = models.CharField(_("language"), max_length=8, choices=TEXT_LANGUAGES)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    short = models.CharField(_("short variant (SMS, WhatsApp, chat)"), max_length=320, blank=True)
    full = models.TextField(_("full variant (email, portal, web)"), blank=True)

    class Meta:
        verbose_name = _("product text")
        verbose_name_plural = _("product texts")
        constraints = [models.UniqueConstraint(fields=["product", "language"], name="catalog_text_unique_language")]
        # On PostgreSQL the table also has a generated tsvector column and its indexes, created by
        # the catalog_search migration; Django never reads or writes that column.

    def __str__(self) -> str:
        return f"{self.product_id}:{self.language}"


class ProductPrice(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    market = models.CharField(_("market"), max_length=8, help_text=_("A market code such as PL, RU, GB or US."))
    currency = models.CharField(_("currency"), max_length=3, help_text=_("ISO 4217, such as PLN or EUR."))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        ordering = ["market", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["product", "market", "currency"], name="catalog_price_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="catalog_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.market})"


def _image_path(instance: ProductImage, filename: str) -> str:
    return f"catalog/{instance.product_id}/{filename}"


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(_("image"), upload_to=_image_path)
    alt = models.CharField(_("alternative text"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.file.name


class ExclusiveGroup(models.Model):
    """Products of which a configuration may hold at most one (a mutually exclusive group)."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    products = models.ManyToManyField(Product, related_name="exclusive_groups", blank=True, verbose_name=_("products"))

    class Meta:
        verbose_name = _("mutually exclusive group")
        verbose_name_plural = _("mutually exclusive groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Rule(models.Model):
    """A configuration rule on one product.

    - requires: when ``product`` is in a configuration, ``other`` must be too (or be owned);
    - excludes: ``product`` and ``other`` never go together;
    - compatible: ``product`` works only with one of the products its compatible rules name;
    - quantity: when ``product`` is in a configuration, its quantity is within [min, max].
    Mutually exclusive groups are ``ExclusiveGroup`` rows.
    """

    class Kind(models.TextChoices):
        REQUIRES = "requires", _("requires")
        EXCLUDES = "excludes", _("excludes")
        COMPATIBLE = "compatible", _("compatible with")
        QUANTITY = "quantity", _("quantity between")

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="rules", verbose_name=_("product"))
    kind = models.CharField(_("rule"), max_length=12, choices=Kind.choices)
    other = models.ForeignKey(Product, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("other product"))
    min_quantity = models.PositiveIntegerField(_("minimum quantity"), null=True, blank=True)
    max_quantity = models.PositiveIntegerField(_("maximum quantity"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("configuration rule")
        verbose_name_plural = _("configuration rules")
        ordering = ["product_id", "kind", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="quantity", other__isnull=True) & (Q(min_quantity__isnull=False) | Q(max_quantity__isnull=False)))
                | (~Q(kind="quantity") & Q(other__isnull=False)),
                name="catalog_rule_shape",
            ),
            models.CheckConstraint(condition=~Q(product=models.F("other")), name="catalog_rule_not_self"),
            models.UniqueConstraint(fields=["product", "kind", "other"], condition=Q(other__isnull=False),
                                    name="catalog_rule_unique_pair"),
            models.UniqueConstraint(fields=["product"], condition=Q(kind="quantity"), name="catalog_rule_one_quantity"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.kind} {self.other_id or ''}"


class Offer(models.Model):
    """An offer or a plan, with the conditions under which a customer may take it."""

    class Kind(models.TextChoices):
        OFFER = "offer", _("Offer")
        PLAN = "plan", _("Plan")

    code = models.CharField(_("code"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.OFFER)
    name = models.CharField(_("name"), max_length=200)
    terms = models.TextField(_("terms"), blank=True)
    products = models.ManyToManyField(Product, related_name="offers", blank=True, verbose_name=_("products"))
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    # Empty lists mean "any".
    lifecycle_stages = models.JSONField(_("lifecycle stages"), default=list, blank=True)
    markets = models.JSONField(_("markets"), default=list, blank=True)
    requires_owned = models.ManyToManyField(
        Product, related_name="+", blank=True, verbose_name=_("customer owns one of"),
    )
    excludes_owned = models.ManyToManyField(
        Product, related_name="+", blank=True, verbose_name=_("customer owns none of"),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="catalog_offer_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class OwnedProduct(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        ENDED = "ended", _("Ended")

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="owned_products")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="owners", verbose_name=_("product"))
    reference = models.CharField(_("serial or contract number"), max_length=100, blank=True)
    start_date = models.DateField(_("start date"), null=True, blank=True)
    end_date = models.DateField(_("end date"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("owned product")
        verbose_name_plural = _("owned products")
        ordering = ["-start_date", "-pk"]
        indexes = [models.Index(fields=["customer", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__isnull=True) | Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="catalog_owned_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.product_id}:{self.reference}"


class SearchWord(models.Model):
    """Every word of the product texts, lower-cased: the vocabulary that typos in a search are
    corrected against (catalog/search.py). Filled by catalog.services when texts are saved."""

    word = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.word


class ChangeLog(models.Model):
    """Who changed what and when in the catalog. Written by catalog.services only."""

    class Action(models.TextChoices):
        CREATE = "create", _("created")
        UPDATE = "update", _("changed")
        DELETE = "delete", _("deleted")
        IMPORT = "import", _("imported")

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    # The product the change belongs to, so its editor can show its history.
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")
    # {"field": [old, new]} as strings
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["product", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type} {self.object_repr}"
