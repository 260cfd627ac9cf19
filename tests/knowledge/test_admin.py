"""Admin screens at /app/admin/kb/: only admins get in; editing, publishing, preview, versions
with diff and restore, attachments, and CSV/JSON import (dry run, errors by row) and export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from knowledge.models import Article, Translation
from tests.catalog.factories import ProductFactory
from tests.knowledge.factories import ArticleFactory, CategoryFactory

pytestmark = pytest.mark.django_db

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d1e3f50000000049454e44ae426082"
)


@pytest.fixture
def admin(people) -> Client:
    client = Client()
    client.force_login(people.admin)
    return client


@pytest.fixture
def article():
    return ArticleFactory(slug="returns", title="Returns", body="Within 14 days.", status="draft")


def form_data(**overrides) -> dict:
    data = {
        "slug": "returns", "category": "", "status": "draft", "visibility": "public", "source_language": "en",
        "tags": "refund, Money", "related_product_skus": "", "related_articles": "",
        "title": "Returns", "body": "Within 30 days.", "short_text": "30 days to return.", "rich_body": "",
    }
    return {**data, **overrides}


@pytest.mark.parametrize("persona", ["agent_a", "supervisor"])
def test_non_admins_cannot_open_or_change_anything(persona, people, article):
    client = Client()
    client.force_login(getattr(people, persona))
    for url in ("/app/admin/kb/", f"/app/admin/kb/{article.pk}/", "/app/admin/kb/new/",
                f"/app/admin/kb/{article.pk}/versions/", "/app/admin/kb/transfer/", "/app/admin/kb/export.csv"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/app/admin/kb/{article.pk}/", form_data(body="Hacked", action="publish")).status_code == 403
    assert client.post(f"/app/admin/kb/{article.pk}/versions/1/restore/").status_code == 403
    assert client.post("/app/admin/kb/preview/", {"body": "x"}).status_code == 403
    article.refresh_from_db()
    assert (article.status, article.translations.get().body) == ("draft", "Within 14 days.")


def test_anonymous_is_sent_to_sign_in(article):
    response = Client().get("/app/admin/kb/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_admin_edits_and_publishes_with_a_version_recording_who(admin, people, article):
    ProductFactory(sku="SKU-1")
    response = admin.post(f"/app/admin/kb/{article.pk}/", form_data(action="publish", related_product_skus="SKU-1"))
    assert response.status_code == 302
    article.refresh_from_db()
    translation = article.translations.get()
    assert (article.status, translation.body, translation.short_text) == ("published", "Within 30 days.", "30 days to return.")
    assert sorted(article.tags.values_list("name", flat=True)) == ["money", "refund"]
    assert article.related_product_skus == ["SKU-1"]
    version = article.versions.first()
    assert version.number == 2 and version.created_by == people.admin
    page = admin.get(f"/app/admin/kb/{article.pk}/versions/?a=1&b=2").content.decode()
    assert "-    Within 14 days." in page and "+    Within 30 days." in page and people.admin.display_name in page


def test_related_products_must_be_catalog_products(admin, article):
    ProductFactory(sku="RTR-1")
    response = admin.post(f"/app/admin/kb/{article.pk}/", form_data(related_product_skus="RTR-1, NOPE-9, GONE-2"))
    assert response.status_code == 200
    assert "Unknown SKU: GONE-2, NOPE-9." in response.content.decode()
    article.refresh_from_db()
    assert article.related_product_skus == [] and article.versions.count() == 1


def test_editor_shows_field_errors_and_changes_nothing(admin, article):
    response = admin.post(f"/app/admin/kb/{article.pk}/", form_data(slug="Not A Slug", title=""))
    assert response.status_code == 200
    assert "field-errors" in response.content.decode()
    article.refresh_from_db()
    assert article.slug == "returns" and article.versions.count() == 1


def test_admin_creates_an_article_and_adds_a_translation(admin):
    response = admin.post("/app/admin/kb/new/", form_data(slug="shipping", title="Shipping", body="Two days."))
    article = Article.objects.get(slug="shipping")
    assert response["Location"] == f"/app/admin/kb/{article.pk}/"
    admin.post(f"/app/admin/kb/{article.pk}/ru/", form_data(slug="shipping", title="Доставка", body="Два дня."))
    assert dict(article.translations.values_list("language", "title")) == {"en": "Shipping", "ru": "Доставка"}
    page = admin.get("/app/admin/kb/").content.decode()
    assert "Shipping" in page and ">ru<" in page


def test_preview_renders_sanitized_markdown(admin):
    response = admin.post("/app/admin/kb/preview/", {"body": "# Title\n\n<script>alert(1)</script> **bold**"})
    html = response.content.decode()
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<script>" not in html


def test_preview_of_the_rich_body_shows_the_rich_body_though_htmx_posts_the_whole_form(admin):
    form = {"body": "Main **text**", "rich_body": "## Rich heading"}
    rich = admin.post("/app/admin/kb/preview/", form, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="rich_body")
    main = admin.post("/app/admin/kb/preview/", form, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="body")
    assert "<h2>Rich heading</h2>" in rich.content.decode() and "Main" not in rich.content.decode()
    assert "<strong>text</strong>" in main.content.decode() and "Rich" not in main.content.decode()


def test_restore_from_the_versions_screen(admin, article):
    admin.post(f"/app/admin/kb/{article.pk}/", form_data())
    admin.post(f"/app/admin/kb/{article.pk}/versions/1/restore/")
    assert article.translations.get().body == "Within 14 days."
    assert article.versions.first().number == 3


def test_attachment_upload_checks_the_type_and_serves_by_visibility(admin, article, people):
    bad = SimpleUploadedFile("evil.png", b"<html><script>alert(1)</script>", content_type="image/png")
    admin.post(f"/app/admin/kb/{article.pk}/attachments/", {"file": bad})
    assert not article.attachments.exists()
    admin.post(f"/app/admin/kb/{article.pk}/attachments/", {"file": SimpleUploadedFile("dot.png", PNG, content_type="image/png")})
    attachment = article.attachments.get()
    url = f"/help/files/{attachment.public_id}/dot.png"
    assert admin.get(url).status_code == 200
    assert Client().get(url).status_code == 404  # the article is a draft
    admin.post(f"/app/admin/kb/{article.pk}/", form_data(action="publish"))
    response = Client().get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_admin_list_query_count_is_constant(admin, django_assert_max_num_queries):
    for n in range(3):
        ArticleFactory(slug=f"a{n}", title=f"A {n}", body="x")
    with django_assert_max_num_queries(12) as few:
        admin.get("/app/admin/kb/")
    for n in range(3, 15):
        ArticleFactory(slug=f"a{n}", title=f"A {n}", body="x")
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin.get("/app/admin/kb/")


# Import and export -------------------------------------------------------------------------------

def upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["slug", "language", "title", "body", "short_text", "category", "status", "visibility", "tags", "related_product_skus"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


GOOD = {"slug": "ship", "language": "en", "title": "Shipping", "body": "Two days.", "category": "orders", "status": "published", "visibility": "public", "tags": "ship"}


def test_csv_dry_run_lists_errors_by_row_and_imports_nothing(admin):
    CategoryFactory(slug="orders")
    text = csv_text([
        GOOD,
        {**GOOD, "language": "ru", "title": "", "body": "Два дня."},  # row 3: no title
        {**GOOD, "slug": "Bad Slug", "title": "x"},  # row 4
        {**GOOD, "slug": "cat", "category": "nope"},  # row 5
        {**GOOD, "slug": "st", "status": "live"},  # row 6
        {**GOOD, "slug": "sku", "related_product_skus": "NOPE-1"},  # row 7: not a catalog product
    ])
    for dry_run in (True, False):
        response = admin.post("/app/admin/kb/transfer/", {"file": upload("a.csv", text), "dry_run": "on" if dry_run else ""})
        assert response.status_code == 400
        report = response.context["report"]
        assert [(e.row, e.field) for e in report.errors] == [
            (3, "translations.ru.title"), (4, "slug"), (5, "category"), (6, "status"), (7, "related_product_skus"),
        ]
        assert "nothing was imported" in response.content.decode()
    assert not Article.objects.exists()


def test_csv_import_after_a_clean_dry_run(admin):
    CategoryFactory(slug="orders")
    text = csv_text([GOOD, {**GOOD, "language": "ru", "title": "Доставка", "body": "Два дня."}])
    dry = admin.post("/app/admin/kb/transfer/", {"file": upload("a.csv", text), "dry_run": "on"})
    assert dry.status_code == 200 and dry.context["report"].created == ["ship"] and not Article.objects.exists()
    admin.post("/app/admin/kb/transfer/", {"file": upload("a.csv", text)})
    article = Article.objects.get(slug="ship")
    assert (article.status, article.category.slug) == ("published", "orders")
    assert dict(article.translations.values_list("language", "title")) == {"en": "Shipping", "ru": "Доставка"}
    assert article.versions.get().summary.startswith("import")


def test_json_round_trip_updates_existing_articles(admin, article):
    exported = admin.get("/app/admin/kb/export.json")
    data = json.loads(exported.content)
    assert data["articles"][0]["slug"] == "returns"
    data["articles"][0]["translations"]["en"]["body"] = "Within 60 days."
    data["articles"].append({"slug": 5})
    bad = admin.post("/app/admin/kb/transfer/", {"file": upload("a.json", json.dumps(data))})
    assert [(e.row, e.field) for e in bad.context["report"].errors] == [(2, "article")]
    data["articles"].pop()
    admin.post("/app/admin/kb/transfer/", {"file": upload("a.json", json.dumps(data))})
    assert Translation.objects.get(article=article).body == "Within 60 days."
    assert admin.post("/app/admin/kb/transfer/", {"file": upload("a.json", "{not json")}).context["report"].errors[0].field == "file"


def test_csv_export_neutralizes_spreadsheet_formulas(admin):
    ArticleFactory(slug="formula", title="=HYPERLINK(\"http://evil\")", body="+1+2", short_text="@SUM(A1)",
                   tags=["-tag"])
    response = admin.get("/app/admin/kb/export.csv")
    assert response["Content-Disposition"].startswith('attachment; filename="articles-')
    row = next(r for r in csv.DictReader(io.StringIO(response.content.decode())) if r["slug"] == "formula")
    assert row["title"] == "'=HYPERLINK(\"http://evil\")"
    assert row["body"] == "'+1+2" and row["short_text"] == "'@SUM(A1)" and row["tags"] == "'-tag"


@pytest.mark.parametrize(("name", "content", "error"), [
    ("articles.txt", b"x", "Upload a .csv or .json file."),
    ("articles.csv", "slug,language\nß,en\n".encode("latin-1"), "The file is not UTF-8 text."),
    ("articles.csv", b"x" * (20 * 1024 * 1024 + 1), "The file is larger than 20 MB."),
])
def test_unreadable_uploads_are_refused_and_nothing_is_imported(admin, name, content, error):
    response = admin.post("/app/admin/kb/transfer/", {"file": SimpleUploadedFile(name, content), "dry_run": ""})
    assert error in response.content.decode()
    assert not Article.objects.exists()


def test_exports_are_named_downloads_and_other_formats_are_404(admin, article):
    response = admin.get("/app/admin/kb/export.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="articles-') and response["Content-Disposition"].endswith('.csv"')
    assert admin.get("/app/admin/kb/export.json")["Content-Type"] == "application/json; charset=utf-8"
    assert admin.get("/app/admin/kb/export.xml").status_code == 404
