"""Forms of the catalog admin screens. They parse and check input; catalog.services writes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalog.models import TEXT_LANGUAGES, Offer, OwnedProduct, Product, Rule
from customers.models import Customer
from omnicenter.transfer import ImportForm as BaseImportForm

LANGUAGES = [code for code, _name in TEXT_LANGUAGES]
SKU_RE = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}


def products_by_sku(text: str) -> list[Product]:
    """Products named by SKUs separated by commas, spaces or lines; raises on unknown ones."""
    skus = [s for s in re.split(r"[\s,;]+", text or "") if s][:200]
    if not skus:
        return []
    query = Q()
    for sku in skus:
        query |= Q(sku__iexact=sku)
    found = {p.sku.upper(): p for p in Product.objects.filter(query)}
    unknown = [s for s in skus if s.upper() not in found]
    if unknown:
        raise forms.ValidationError(_("Unknown SKU: %(skus)s.") % {"skus": ", ".join(unknown)})
    return list({found[s.upper()].pk: found[s.upper()] for s in skus}.values())


class ProductForm(forms.Form):
    sku = forms.RegexField(SKU_RE, label=gettext_lazy("SKU"), max_length=64,
                           error_messages={"invalid": gettext_lazy("Letters, digits and . _ / - only.")})
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Product.Kind.choices)
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=Product.Status.choices)
    category = forms.CharField(label=gettext_lazy("Category"), max_length=120, required=False)
    source_language = forms.ChoiceField(label=gettext_lazy("Source language"), choices=TEXT_LANGUAGES)
    prices = forms.CharField(
        label=gettext_lazy("Prices"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line: market, currency and amount, such as “PL PLN 49.00”."),
    )
    image = forms.FileField(label=gettext_lazy("Add an image"), required=False)
    image_alt = forms.CharField(label=gettext_lazy("Image description"), required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for language, name in TEXT_LANGUAGES:
            self.fields[f"name_{language}"] = forms.CharField(label=_("Name (%(language)s)") % {"language": name},
                                                             max_length=200, required=False)
            self.fields[f"description_{language}"] = forms.CharField(
                label=_("Description (%(language)s)") % {"language": name}, required=False,
                widget=forms.Textarea(attrs={"rows": 3}))
            self.fields[f"short_{language}"] = forms.CharField(
                label=_("Short variant for SMS, WhatsApp, chat (%(language)s)") % {"language": name}, max_length=320,
                required=False)
            self.fields[f"full_{language}"] = forms.CharField(
                label=_("Full variant for email, portal, web (%(language)s)") % {"language": name}, required=False,
                widget=forms.Textarea(attrs={"rows": 4}))

    @staticmethod
    def initial_for(product: Product) -> dict:
        initial = {
            "sku": product.sku, "kind": product.kind, "status": product.status, "source_language": product.source_language,
            "category": product.category.name if product.category_id else "",
            "prices": "\n".join(f"{p.market} {p.currency} {p.amount}" for p in product.prices.all()),
        }
        for text in product.texts.all():
            for column in ("name", "description", "short", "full"):
                initial[f"{column}_{text.language}"] = getattr(text, column)
        return initial

    def language_fields(self):
        return [(name, [self[f"{column}_{code}"] for column in ("name", "description", "short", "full")])
                for code, name in TEXT_LANGUAGES]

    def clean_prices(self) -> list[dict]:
        prices = []
        for number, line in enumerate((self.cleaned_data.get("prices") or "").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                if len(parts) != 3 or not re.fullmatch(r"[A-Za-z]{2,8}", parts[0]) or not re.fullmatch(r"[A-Za-z]{3}", parts[1]):
                    raise InvalidOperation
                amount = Decimal(parts[2].replace(",", "."))
                if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")) or amount >= Decimal("1e10"):
                    raise InvalidOperation
            except InvalidOperation:
                raise forms.ValidationError(
                    _("Line %(line)s: write market, currency and amount, such as “PL PLN 49.00”.") % {"line": number}
                ) from None
            prices.append({"market": parts[0].upper(), "currency": parts[1].upper(), "amount": amount})
        return prices

    def clean_image(self):
        image = self.cleaned_data.get("image")
        if image and (image.content_type not in IMAGE_TYPES or image.size > 5 * 1024 * 1024):
            raise forms.ValidationError(_("Upload a PNG, JPEG, WebP or GIF image of at most 5 MB."))
        return image

    def clean(self):
        data = super().clean()
        source = data.get("source_language")
        if source and not (data.get(f"name_{source}") or "").strip():
            self.add_error(f"name_{source}", _("A name in the source language is required."))
        for language in LANGUAGES:
            filled = any((data.get(f"{c}_{language}") or "").strip() for c in ("description", "short", "full"))
            if filled and not (data.get(f"name_{language}") or "").strip():
                self.add_error(f"name_{language}", _("This translation needs a name."))
        return data

    def texts(self) -> dict[str, dict]:
        return {language: {c: self.cleaned_data.get(f"{c}_{language}", "") for c in ("name", "description", "short", "full")}
                for language in LANGUAGES}

    def values(self) -> dict:
        return {"sku": self.cleaned_data["sku"], "kind": self.cleaned_data["kind"], "status": self.cleaned_data["status"],
                "source_language": self.cleaned_data["source_language"], "category_name": self.cleaned_data["category"]}


class RuleForm(forms.Form):
    """Shown beside the product form, so its ids carry their own prefix."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "rule_%s")
        super().__init__(*args, **kwargs)

    kind = forms.ChoiceField(label=gettext_lazy("Rule"), choices=Rule.Kind.choices)
    other = forms.CharField(label=gettext_lazy("Other product (SKU)"), required=False, max_length=64)
    min_quantity = forms.IntegerField(label=gettext_lazy("Minimum"), required=False, min_value=0, max_value=100_000)
    max_quantity = forms.IntegerField(label=gettext_lazy("Maximum"), required=False, min_value=1, max_value=100_000)

    def clean(self):
        data = super().clean()
        if data.get("kind") == Rule.Kind.QUANTITY:
            if data.get("min_quantity") is None and data.get("max_quantity") is None:
                raise forms.ValidationError(_("A quantity rule needs a minimum, a maximum or both."))
            data["other"] = None
        elif data.get("kind"):
            if not data.get("other"):
                self.add_error("other", _("Name the other product by its SKU."))
            else:
                try:
                    data["other"] = products_by_sku(data["other"])[0]
                except forms.ValidationError as exc:
                    self.add_error("other", exc)
        return data


class ConfigurationForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "check_%s")
        super().__init__(*args, **kwargs)

    lines = forms.CharField(
        label=gettext_lazy("Configuration"), widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("One product per line: SKU and an optional quantity, such as “RTR-1 2”."),
    )
    market = forms.RegexField(r"^[A-Za-z]{0,8}$", label=gettext_lazy("Market"), required=False, max_length=8)
    language = forms.ChoiceField(label=gettext_lazy("Explain in"), choices=TEXT_LANGUAGES)

    def clean_lines(self):
        items = []
        for number, line in enumerate(self.cleaned_data["lines"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) > 2 or (len(parts) == 2 and not (parts[1].isdigit() and 0 < int(parts[1]) <= 100_000)):
                raise forms.ValidationError(_("Line %(line)s: write a SKU and a quantity of at least 1.") % {"line": number})
            product = products_by_sku(parts[0])[0]
            items.append((product, int(parts[1]) if len(parts) == 2 else 1))
        if not items:
            raise forms.ValidationError(_("Name at least one product."))
        return items


class GroupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    products = forms.CharField(label=gettext_lazy("Products (SKUs)"), help_text=gettext_lazy("Separated by commas or spaces."))

    def clean_products(self):
        products = products_by_sku(self.cleaned_data["products"])
        if len(products) < 2:
            raise forms.ValidationError(_("A group needs at least two products."))
        return products


class OfferForm(forms.Form):
    code = forms.RegexField(SKU_RE, label=gettext_lazy("Code"), max_length=64)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Offer.Kind.choices)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    terms = forms.CharField(label=gettext_lazy("Terms"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    valid_from = forms.DateField(label=gettext_lazy("Valid from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(label=gettext_lazy("Valid until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    lifecycle_stages = forms.MultipleChoiceField(label=gettext_lazy("For lifecycle stages (none: any)"), required=False,
                                                 choices=Customer.Stage.choices, widget=forms.CheckboxSelectMultiple)
    markets = forms.CharField(label=gettext_lazy("Markets (none: any)"), required=False, max_length=200)
    products = forms.CharField(label=gettext_lazy("Products (SKUs)"), required=False)
    requires_owned = forms.CharField(label=gettext_lazy("Customer owns one of (SKUs)"), required=False)
    excludes_owned = forms.CharField(label=gettext_lazy("Customer owns none of (SKUs)"), required=False)
    active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    @staticmethod
    def initial_for(offer: Offer) -> dict:
        def skus(related) -> str:
            return ", ".join(sorted(p.sku for p in related.all()))

        return {
            "code": offer.code, "kind": offer.kind, "name": offer.name, "terms": offer.terms, "valid_from": offer.valid_from,
            "valid_until": offer.valid_until, "lifecycle_stages": offer.lifecycle_stages, "markets": ", ".join(offer.markets),
            "products": skus(offer.products), "requires_owned": skus(offer.requires_owned),
            "excludes_owned": skus(offer.excludes_owned), "active": offer.active,
        }

    def clean_markets(self):
        markets = [m.upper() for m in re.split(r"[\s,;]+", self.cleaned_data["markets"]) if m]
        if any(not re.fullmatch(r"[A-Z]{2,8}", m) for m in markets):
            raise forms.ValidationError(_("Market codes are 2 to 8 letters, such as PL."))
        return markets

    def clean_products(self):
        return products_by_sku(self.cleaned_data["products"])

    def clean_requires_owned(self):
        return products_by_sku(self.cleaned_data["requires_owned"])

    def clean_excludes_owned(self):
        return products_by_sku(self.cleaned_data["excludes_owned"])

    def clean(self):
        data = super().clean()
        if data.get("valid_from") and data.get("valid_until") and data["valid_until"] < data["valid_from"]:
            self.add_error("valid_until", _("The offer ends before it starts."))
        return data

    def values(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("code", "kind", "name", "terms", "valid_from", "valid_until",
                                                  "lifecycle_stages", "markets", "active")}


class OwnedProductForm(forms.Form):
    product = forms.CharField(label=gettext_lazy("Product (SKU)"), max_length=64)
    reference = forms.CharField(label=gettext_lazy("Serial or contract number"), required=False, max_length=100)
    start_date = forms.DateField(label=gettext_lazy("Start date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=gettext_lazy("End date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=OwnedProduct.Status.choices)

    def clean_product(self):
        return products_by_sku(self.cleaned_data["product"])[0]

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            self.add_error("end_date", _("The end date is before the start date."))
        return data


class ImportForm(BaseImportForm):
    max_megabytes = 10
