"""CSV and JSON import and export of articles.

CSV has one row per article and language; JSON one object per article with its translations.
An import is checked completely first: every problem is reported with its row (CSV line, or JSON
item number), and if there is any, nothing is written. A dry run only checks. Exported CSV cells
that a spreadsheet would run as a formula (= + - @, tab, carriage return) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from knowledge import services
from knowledge.models import Article, Category
from knowledge.services import ArticleData
from omnicenter.spreadsheet import neutralize

CSV_COLUMNS = [
    "slug", "language", "title", "body", "short_text", "rich_body", "category", "status", "visibility",
    "source_language", "tags", "related_product_skus",
]
REQUIRED_CSV = {"slug", "language", "title", "body"}
MAX_ROWS = 20_000


@dataclass
class RowError:
    row: int
    field: str
    message: str


@dataclass
class ImportReport:
    errors: list[RowError] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    dry_run: bool = True

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Planned:
    slug: str
    rows: list[int]
    meta: dict
    translations: dict[str, dict[str, str]]
    translation_rows: dict[str, int]



def _split(value) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


# Parsing --------------------------------------------------------------------------------------

def parse_csv(text: str, report: ImportReport) -> list[_Planned]:
    reader = csv.DictReader(io.StringIO(text))
    missing = REQUIRED_CSV - set(reader.fieldnames or [])
    if missing:
        report.errors.append(RowError(1, "header", _("Missing columns: %(cols)s.") % {"cols": ", ".join(sorted(missing))}))
        return []
    planned: dict[str, _Planned] = {}
    for number, row in enumerate(reader, start=2):
        if number > MAX_ROWS + 1:
            report.errors.append(RowError(number, "file", _("At most %(n)s rows.") % {"n": MAX_ROWS}))
            break
        row = {k: (v or "").strip() if isinstance(v, str) else v for k, v in row.items() if k}
        if None in row or any(isinstance(v, list) for v in row.values()):
            report.errors.append(RowError(number, "row", _("More cells than columns.")))
            continue
        slug, language = row.get("slug", ""), row.get("language", "")
        if not slug:
            report.errors.append(RowError(number, "slug", _("Required.")))
            continue
        item = planned.setdefault(slug, _Planned(slug, [], {}, {}, {}))
        item.rows.append(number)
        if language in item.translations:
            report.errors.append(RowError(number, "language", _("Language %(l)s appears twice for this slug.") % {"l": language}))
            continue
        item.translations[language] = {f: row.get(f, "") for f in services.CONTENT_FIELDS}
        item.translation_rows[language] = number
        for name in ("category", "status", "visibility", "source_language"):
            if row.get(name):
                item.meta.setdefault(name, (row[name], number))
        for name in ("tags", "related_product_skus"):
            if row.get(name):
                item.meta.setdefault(name, (_split(row[name]), number))
    return list(planned.values())


def parse_json(text: str, report: ImportReport) -> list[_Planned]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        report.errors.append(RowError(0, "file", _("Not valid JSON: %(e)s") % {"e": exc}))
        return []
    if isinstance(data, dict):
        data = data.get("articles")
    if not isinstance(data, list):
        report.errors.append(RowError(0, "file", _("Expected a list of articles (or {\"articles\": [...]}).")))
        return []
    planned: list[_Planned] = []
    seen: set[str] = set()
    for number, item in enumerate(data[:MAX_ROWS], start=1):
        if not isinstance(item, dict) or not isinstance(item.get("translations"), dict) or not item.get("slug"):
            report.errors.append(RowError(number, "article", _("Each article needs a slug and a translations object.")))
            continue
        slug = str(item["slug"])
        if slug in seen:
            report.errors.append(RowError(number, "slug", _("This slug appears twice.")))
            continue
        seen.add(slug)
        translations = {}
        for language, content in item["translations"].items():
            if not isinstance(content, dict):
                report.errors.append(RowError(number, f"translations.{language}", _("Expected an object.")))
                continue
            translations[language] = {f: str(content.get(f) or "") for f in services.CONTENT_FIELDS}
        meta = {name: (item[name], number) for name in ("category", "status", "visibility", "source_language", "tags", "related_product_skus") if item.get(name) not in (None, "")}
        planned.append(_Planned(slug, [number], meta, translations, dict.fromkeys(translations, number)))
    return planned


# Checking and writing -------------------------------------------------------------------------

def _data_for(item: _Planned, article: Article | None, categories: dict[str, Category], report: ImportReport) -> ArticleData | None:
    first = item.rows[0]
    data = ArticleData(slug=item.slug if article is None else None, translations=item.translations)
    for name in ("status", "visibility", "source_language"):
        if name in item.meta:
            setattr(data, name, str(item.meta[name][0]))
    if article is None and data.source_language is None:
        data.source_language = next(iter(item.translations), "en")
    if article is None and data.status is None:
        data.status = Article.Status.DRAFT
    if "category" in item.meta:
        value, row = item.meta["category"]
        if str(value) not in categories:
            report.errors.append(RowError(row, "category", _("Unknown category %(v)r.") % {"v": value}))
            return None
        data.category = categories[str(value)]
    if "tags" in item.meta:
        data.tags = _split(item.meta["tags"][0])
    if "related_product_skus" in item.meta:
        data.related_product_skus = _split(item.meta["related_product_skus"][0])
    errors = services.check_article_data(data, article=article)
    for key, message in errors.items():
        row = first
        if key.startswith("translations."):
            row = item.translation_rows.get(key.split(".")[1], first)
        elif key in item.meta:
            row = item.meta[key][1]
        report.errors.append(RowError(row, key, message))
    return None if errors else data


def articles_import(*, text: str, fmt: str, by, dry_run: bool) -> ImportReport:
    """Check every row; unless it is a dry run and only if nothing is wrong, write them all."""
    report = ImportReport(dry_run=dry_run)
    planned = parse_csv(text, report) if fmt == "csv" else parse_json(text, report)
    existing = {a.slug: a for a in Article.objects.filter(slug__in=[p.slug for p in planned])}
    categories = {c.slug: c for c in Category.objects.all()}
    work = []
    for item in planned:
        data = _data_for(item, existing.get(item.slug), categories, report)
        if data is not None:
            work.append((item.slug, data))
    report.errors.sort(key=lambda e: (e.row, e.field))
    if report.errors or dry_run:
        for slug, _data in work:
            (report.updated if slug in existing else report.created).append(slug)
        return report
    with transaction.atomic():
        for slug, data in work:
            if slug in existing:
                services.article_update(article=existing[slug], data=data, by=by, note=_("import"))
                report.updated.append(slug)
            else:
                services.article_create(data=data, by=by, note=_("import"))
                report.created.append(slug)
    return report


# Export ---------------------------------------------------------------------------------------

def _export_rows():
    articles = Article.objects.select_related("category").prefetch_related("translations", "tags").order_by("slug")
    for article in articles:
        yield article, sorted(article.translations.all(), key=lambda t: t.language)


def export_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for article, translations in _export_rows():
        for t in translations:
            values = {
                "slug": article.slug, "language": t.language, "title": t.title, "body": t.body,
                "short_text": t.short_text, "rich_body": t.rich_body,
                "category": article.category.slug if article.category_id else "", "status": article.status,
                "visibility": article.visibility, "source_language": article.source_language,
                "tags": ",".join(tag.name for tag in article.tags.all()),
                "related_product_skus": ",".join(article.related_product_skus),
            }
            writer.writerow([neutralize(values[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def export_json() -> str:
    items = [
        {
            "slug": article.slug, "category": article.category.slug if article.category_id else None,
            "status": article.status, "visibility": article.visibility, "source_language": article.source_language,
            "tags": [tag.name for tag in article.tags.all()], "related_product_skus": list(article.related_product_skus),
            "translations": {t.language: {f: getattr(t, f) for f in services.CONTENT_FIELDS} for t in translations},
        }
        for article, translations in _export_rows()
    ]
    return json.dumps({"articles": items}, ensure_ascii=False, indent=2)
