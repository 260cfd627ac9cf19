"""CSV and JSON import and export: dry run, errors by row, all-or-nothing, formula neutralization."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import ChangeLog, Product, ProductText
from omnicenter.spreadsheet import FORMULA_PREFIXES
from tests.catalog.factories import ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "sku,kind,status,category,source_language,name_en,description_en,short_en,full_en,name_ru,prices\n"


def upload(client, name: str, content: str, *, dry_run: bool):
    data = {"file": SimpleUploadedFile(name, content.encode(), content_type="text/plain")}
    if dry_run:
        data["dry_run"] = "on"
    return client.post("/app/admin/catalog/transfer/", data)


def test_dry_run_of_a_valid_file_reports_and_imports_nothing(client, people):
    client.force_login(people.admin)
    content = HEADER + "RTR-1,product,active,Routers,en,Router,,Short,,Роутер,PL:PLN:10.00;DE:EUR:2.50\n"

    response = upload(client, "products.csv", content, dry_run=True)

    assert response.status_code == 200
    assert "Dry run: the file is valid. It would create 1 and update 0 products. Nothing was imported." in response.content.decode()
    assert not Product.objects.exists() and not ChangeLog.objects.exists()


def test_an_invalid_row_lists_errors_by_row_and_nothing_is_imported(client, people):
    ProductFactory(sku="KEEP", name="Unchanged")
    client.force_login(people.admin)
    content = HEADER + (
        "RTR-1,product,active,,en,Router,,,,,PL:PLN:10.00\n"
        "KEEP,product,active,,en,Changed,,,,,\n"
        "bad sku,gadget,active,,en,,,,,,PL:PLN:-1\n"
        "RTR-1,product,active,,en,Router again,,,,,PL-10\n"
    )

    for dry_run in (True, False):
        response = upload(client, "products.csv", content, dry_run=dry_run)
        page = response.content.decode()
        assert response.status_code == 400
        assert "errors: nothing was imported." in page
        assert "<td>4</td><td>The SKU “bad sku” is missing or invalid" in page
        assert "<td>4</td><td>Unknown kind “gadget”.</td>" in page
        assert "<td>4</td><td>A name in the source language (en) is required.</td>" in page
        assert "<td>4</td><td>The price “-1” is not a non-negative amount with at most two decimals.</td>" in page
        assert "<td>5</td><td>The SKU RTR-1 appears twice in the file.</td>" in page
        assert "<td>5</td><td>A price must be MARKET:CURRENCY:AMOUNT" in page
    assert list(Product.objects.values_list("sku", flat=True)) == ["KEEP"]
    assert ProductText.objects.get().name == "Unchanged"
    assert not ChangeLog.objects.exists()


def test_a_valid_import_creates_and_updates_in_one_go_and_is_audited(client, people):
    ProductFactory(sku="KEEP", name="Old name")
    client.force_login(people.admin)
    payload = [
        {"sku": "KEEP", "status": "active", "texts": {"en": {"name": "New name"}, "pl": {"name": "Nowa nazwa", "short": "Krótko"}}},
        {"sku": "TV-1", "kind": "addon", "status": "draft", "source_language": "ru", "category": "TV",
         "texts": {"ru": {"name": "ТВ", "description": "Приставка"}}, "prices": [{"market": "ru", "currency": "rub", "amount": "990"}]},
    ]

    response = upload(client, "products.json", json.dumps(payload), dry_run=False)

    assert response.status_code == 200
    assert "Imported: 1 created, 1 updated." in response.content.decode()
    keep, tv = Product.objects.get(sku="KEEP"), Product.objects.get(sku="TV-1")
    assert dict(keep.texts.values_list("language", "name")) == {"en": "New name", "pl": "Nowa nazwa"}
    assert (tv.kind, tv.status, tv.source_language, tv.category.name) == ("addon", "draft", "ru", "TV")
    assert [(p.market, p.currency, str(p.amount)) for p in tv.prices.all()] == [("RU", "RUB", "990.00")]
    assert sorted(ChangeLog.objects.values_list("action", "object_repr")) == [
        ("create", "TV-1"), ("import", "2 products (json)"), ("update", "KEEP")]
    assert set(ChangeLog.objects.values_list("actor", flat=True)) == {people.admin.pk}


@pytest.mark.parametrize(("name", "content", "error"), [
    ("products.txt", "x", "Upload a .csv or .json file."),
    ("products.json", "{not json", "The file is not valid JSON"),
    ("products.json", '{"sku": "A"}', "The JSON file must hold a list of products."),
    ("products.csv", "name,price\nA,1\n", "The CSV file needs a header row"),
    ("products.csv", "sku,colour\nA,red\n", "Unknown CSV columns: colour."),
])
def test_unreadable_files_are_refused(client, people, name, content, error):
    client.force_login(people.admin)
    response = upload(client, name, content, dry_run=False)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Product.objects.exists()


DANGEROUS = ["=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)", "\tTabbed", "\rReturn"]


def test_exports_neutralize_formulas_and_import_back_unchanged(client, people):
    for index, name in enumerate(DANGEROUS):
        ProductFactory(sku=f"X-{index}", name=name, name__description="=cmd|' /C calc'!A0")
    client.force_login(people.admin)

    exported_csv = client.get("/app/admin/catalog/export.csv")
    assert exported_csv["Content-Type"].startswith("text/csv")
    assert "attachment" in exported_csv["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported_csv.content.decode())))
    assert [row["name_en"] for row in rows] == ["'" + name for name in DANGEROUS]
    assert {row["description_en"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    for row in rows:
        assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row.values())

    exported_json = json.loads(client.get("/app/admin/catalog/export.json").content)
    assert [item["texts"]["en"]["name"] for item in exported_json] == ["'" + name for name in DANGEROUS]

    ProductText.objects.update(name="overwritten")
    response = upload(client, "products.csv", exported_csv.content.decode(), dry_run=False)
    assert response.status_code == 200
    assert [t.name for t in ProductText.objects.order_by("product__sku")] == [n.strip() for n in DANGEROUS]


def test_export_import_round_trip_keeps_prices_and_translations(client, people):
    product = ProductFactory(sku="RTR-1", name="Router", texts={"ru": "Роутер"}, markets=["PL", "DE"])
    client.force_login(people.admin)
    exported = client.get("/app/admin/catalog/export.json").content.decode()
    product.delete()

    assert upload(client, "p.json", exported, dry_run=False).status_code == 200
    again = Product.objects.get(sku="RTR-1")
    assert dict(again.texts.values_list("language", "name")) == {"en": "Router", "ru": "Роутер"}
    assert sorted(again.prices.values_list("market", "currency")) == [("DE", "EUR"), ("PL", "PLN")]
