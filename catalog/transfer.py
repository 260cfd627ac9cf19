"""CSV and JSON import and export of products.

An import is checked row by row first; a dry run (and any file with an invalid row) reports the
errors by row and writes nothing. A valid file is imported in one transaction through
``catalog.services.product_save``, so every product change lands in the change log.

Exports neutralize spreadsheet formula injection: a cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return gets a leading apostrophe (OWASP's advice), in CSV and in JSON alike,
and imports remove exactly that apostrophe again, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils.translation import gettext as _

from catalog import services
from catalog.models import TEXT_LANGUAGES, Product
from catalog.selectors import products_with_texts
from omnicenter.spreadsheet import neutralize, unneutralize

LANGUAGES = [code for code, _name in TEXT_LANGUAGES]
TEXT_COLUMNS = ("name", "description", "short", "full")
CSV_COLUMNS = [
    "sku", "kind", "status", "category", "source_language",
    *[f"{column}_{language}" for language in LANGUAGES for column in TEXT_COLUMNS],
    "prices",
]
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
MAX_ROWS = 20_000




# ---------------------------------------------------------------------------------------------
# Export


def _product_record(product: Product) -> dict:
    texts = {t.language: {c: getattr(t, c) for c in TEXT_COLUMNS} for t in product.texts.all()}
    return {
        "sku": product.sku, "kind": product.kind, "status": product.status,
        "category": product.category.name if product.category_id else "",
        "source_language": product.source_language, "texts": texts,
        "prices": [{"market": p.market, "currency": p.currency, "amount": format(p.amount, "f")} for p in product.prices.all()],
    }


def _neutralize_deep(value):
    if isinstance(value, dict):
        return {k: _neutralize_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutralize_deep(v) for v in value]
    return neutralize(value)


def export_json() -> str:
    records = [_neutralize_deep(_product_record(p)) for p in products_with_texts().order_by("sku")]
    return json.dumps(records, ensure_ascii=False, indent=1)


def export_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for product in products_with_texts().order_by("sku"):
        record = _product_record(product)
        row = [record["sku"], record["kind"], record["status"], record["category"], record["source_language"]]
        for language in LANGUAGES:
            text = record["texts"].get(language, {})
            row.extend(text.get(column, "") for column in TEXT_COLUMNS)
        row.append(";".join(f"{p['market']}:{p['currency']}:{p['amount']}" for p in record["prices"]))
        writer.writerow([neutralize(cell) for cell in row])
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Import


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, message)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def imported(self) -> bool:
        return self.ok and not self.dry_run


class ImportFileError(Exception):
    """The file as a whole cannot be read (not CSV/JSON, wrong columns, too large)."""


def _parse_csv(content: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(content))
    missing = {"sku"} - set(reader.fieldnames or [])
    if missing:
        raise ImportFileError(_("The CSV file needs a header row with at least a “sku” column."))
    unknown = set(reader.fieldnames or []) - set(CSV_COLUMNS)
    if unknown:
        raise ImportFileError(_("Unknown CSV columns: %(columns)s.") % {"columns": ", ".join(sorted(unknown))})
    records = []
    for row in reader:
        if None in row:
            records.append({"_error": _("The row has more cells than the header.")})
            continue
        texts = {}
        for language in LANGUAGES:
            values = {column: row.get(f"{column}_{language}") or "" for column in TEXT_COLUMNS}
            if any(values.values()):
                texts[language] = values
        prices = []
        for part in filter(None, (row.get("prices") or "").split(";")):
            pieces = part.split(":")
            prices.append(dict(zip(("market", "currency", "amount"), pieces, strict=False)) if len(pieces) == 3 else {"_raw": part})
        records.append({
            "sku": row.get("sku") or "", "kind": row.get("kind") or "", "status": row.get("status") or "",
            "category": row.get("category") or "", "source_language": row.get("source_language") or "",
            "texts": texts, "prices": prices,
        })
    return records


def _parse_json(content: str) -> list[dict]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ImportFileError(_("The file is not valid JSON: %(error)s") % {"error": exc.msg}) from exc
    if not isinstance(data, list):
        raise ImportFileError(_("The JSON file must hold a list of products."))
    return [item if isinstance(item, dict) else {"_error": _("Each product must be a JSON object.")} for item in data]


def _clean_record(record: dict, seen: set[str]) -> tuple[dict | None, list[str]]:
    """Check one record; returns the values for product_save, or the errors."""
    if "_error" in record:
        return None, [record["_error"]]
    errors = []

    def text(value) -> str:
        return unneutralize(value).strip() if isinstance(value, str) else ""

    sku = text(record.get("sku"))
    if not SKU_RE.match(sku):
        errors.append(_("The SKU “%(sku)s” is missing or invalid (letters, digits, . _ / -; up to 64).") % {"sku": sku})
    elif sku.upper() in seen:
        errors.append(_("The SKU %(sku)s appears twice in the file.") % {"sku": sku})
    seen.add(sku.upper())
    kind = text(record.get("kind")) or Product.Kind.PRODUCT
    if kind not in Product.Kind.values:
        errors.append(_("Unknown kind “%(kind)s”.") % {"kind": kind})
    status = text(record.get("status")) or Product.Status.DRAFT
    if status not in Product.Status.values:
        errors.append(_("Unknown status “%(status)s”.") % {"status": status})
    source = text(record.get("source_language")) or "en"
    if source not in LANGUAGES:
        errors.append(_("Unknown source language “%(language)s”.") % {"language": source})
    texts = {}
    raw_texts = record.get("texts") or {}
    if not isinstance(raw_texts, dict):
        errors.append(_("“texts” must be an object keyed by language."))
        raw_texts = {}
    for language, values in raw_texts.items():
        if language not in LANGUAGES or not isinstance(values, dict):
            errors.append(_("Unknown or malformed translation “%(language)s”.") % {"language": language})
            continue
        cleaned = {column: text(values.get(column)) for column in TEXT_COLUMNS}
        if any(cleaned.values()) and not cleaned["name"]:
            errors.append(_("The %(language)s translation needs a name.") % {"language": language})
        elif len(cleaned["name"]) > 200 or len(cleaned["short"]) > 320:
            errors.append(_("The %(language)s name or short variant is too long.") % {"language": language})
        texts[language] = cleaned
    if not texts.get(source, {}).get("name"):
        errors.append(_("A name in the source language (%(language)s) is required.") % {"language": source})
    prices = []
    raw_prices = record.get("prices") or []
    for price in raw_prices if isinstance(raw_prices, list) else [{"_raw": str(raw_prices)}]:
        if not isinstance(price, dict) or "_raw" in price:
            errors.append(_("A price must be MARKET:CURRENCY:AMOUNT, such as PL:PLN:49.00."))
            continue
        market, currency = text(price.get("market")).upper(), text(price.get("currency")).upper()
        try:
            amount = Decimal(text(str(price.get("amount", ""))))
            if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")) or amount >= Decimal("1e10"):
                raise InvalidOperation
        except InvalidOperation:
            errors.append(_("The price “%(amount)s” is not a non-negative amount with at most two decimals.")
                          % {"amount": price.get("amount")})
            continue
        if not re.fullmatch(r"[A-Z]{2,8}", market) or not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(_("A price needs a market code (such as PL) and a three-letter currency (such as PLN)."))
            continue
        prices.append({"market": market, "currency": currency, "amount": amount})
    if len({(p["market"], p["currency"]) for p in prices}) != len(prices):
        errors.append(_("Two prices for the same market and currency."))
    category = text(record.get("category"))[:120]
    if errors:
        return None, errors
    return {"sku": sku, "kind": kind, "status": status, "source_language": source, "category": category,
            "texts": texts, "prices": prices}, []


def import_products(*, content: str, fmt: str, by, dry_run: bool) -> ImportReport:
    """Import products from CSV or JSON text. Nothing is written on a dry run or if any row is invalid."""
    records = _parse_csv(content) if fmt == "csv" else _parse_json(content)
    if len(records) > MAX_ROWS:
        raise ImportFileError(_("At most %(max)s products per file.") % {"max": MAX_ROWS})
    report = ImportReport(dry_run=dry_run, rows=len(records))
    cleaned, seen = [], set()
    first_row = 2 if fmt == "csv" else 1  # CSV rows are numbered as a spreadsheet shows them
    for index, record in enumerate(records):
        values, errors = _clean_record(record, seen)
        report.errors.extend((index + first_row, error) for error in errors)
        if values:
            cleaned.append(values)
    if not records:
        report.errors.append((0, _("The file holds no products.")))
    existing = {p.sku: p for p in Product.objects.filter(sku__in=[v["sku"] for v in cleaned])}
    for values in cleaned:
        (report.updated if values["sku"] in existing else report.created).append(values["sku"])
    if not report.ok or dry_run:
        return report
    try:
        with transaction.atomic():
            for values in cleaned:
                texts, prices = values.pop("texts"), values.pop("prices")
                values["category_name"] = values.pop("category")
                services.product_save(product=existing.get(values["sku"]), by=by, values=values, texts=texts, prices=prices)
            services.record_import(by=by, count=len(cleaned), fmt=fmt)
    except services.CatalogError as exc:
        report.errors.append((0, exc.message))
        report.created, report.updated = [], []
    return report
