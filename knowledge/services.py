"""Every write to the knowledge base, and its rules.

Each save of an article (create, edit, status change, restore, import) records an
``ArticleVersion`` with a snapshot of the whole article, who saved it and what changed, then
re-indexes the translations for search. Views, the API, imports and the shell all come through here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from catalog.selectors import existing_skus
from knowledge import search
from knowledge.languages import kb_languages
from knowledge.models import Article, ArticleAttachment, ArticleVersion, Category, Feedback, Tag, Translation
from knowledge.rendering import html_to_text, markdown_to_html
from omnicenter.errors import DomainError

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SHORT_TEXT_LIMIT = 1000  # about six SMS segments: a short variant that is longer is a mistake
MAX_TAGS = 20
MAX_ATTACHMENT = 10 * 1024 * 1024
ATTACHMENT_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
CONTENT_FIELDS = ("title", "body", "short_text", "rich_body")
META_FIELDS = ("slug", "category", "status", "visibility", "source_language", "tags", "related_product_skus", "related_articles")


class ArticleInvalid(DomainError):
    code = "invalid_article"

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()  # explicit marker: "leave the category as it is" (None clears it)


@dataclass
class ArticleData:
    """What an editor, an importer or the API says an article should be. ``None``: unchanged."""

    slug: str | None = None
    category: Category | _Unchanged | None = UNCHANGED
    status: str | None = None
    visibility: str | None = None
    source_language: str | None = None
    tags: list[str] | None = None
    related_product_skus: list[str] | None = None
    related_articles: list[Article] | None = None
    # {"ru": {"title": ..., "body": ..., "short_text": ..., "rich_body": ...}}; a language left out is unchanged
    translations: dict[str, dict[str, str]] = field(default_factory=dict)


# Validation ---------------------------------------------------------------------------------

def check_article_data(data: ArticleData, *, article: Article | None) -> dict[str, str]:
    """Every problem with ``data`` as field -> message (empty when it may be saved)."""
    errors: dict[str, str] = {}
    languages = kb_languages()
    if article is None or data.slug is not None:
        slug = data.slug or ""
        if not SLUG.match(slug) or len(slug) > 120:
            errors["slug"] = _("Use lowercase letters, digits and hyphens (at most 120).")
        elif Article.objects.filter(slug=slug).exclude(pk=getattr(article, "pk", None)).exists():
            errors["slug"] = _("Another article already has this slug.")
    if data.status is not None and data.status not in Article.Status.values:
        errors["status"] = _("Unknown status %(value)r.") % {"value": data.status}
    if data.visibility is not None and data.visibility not in Article.Visibility.values:
        errors["visibility"] = _("Unknown visibility %(value)r.") % {"value": data.visibility}
    source = data.source_language or (article.source_language if article else None) or "en"
    if source not in languages:
        errors["source_language"] = _("Unknown language %(value)r.") % {"value": source}
    if data.tags is not None:
        if len(data.tags) > MAX_TAGS:
            errors["tags"] = _("At most %(n)s tags.") % {"n": MAX_TAGS}
        elif any(not t.strip() or len(t.strip()) > 50 for t in data.tags):
            errors["tags"] = _("A tag is 1 to 50 characters.")
    if data.related_product_skus is not None:
        if any(not isinstance(s, str) or not s.strip() or len(s) > 64 for s in data.related_product_skus):
            errors["related_product_skus"] = _("A SKU is 1 to 64 characters.")
        else:
            wanted = {s.strip() for s in data.related_product_skus}
            unknown = sorted(wanted - existing_skus(sorted(wanted)))
            if unknown:
                errors["related_product_skus"] = _("Unknown SKU: %(skus)s.") % {"skus": ", ".join(unknown)}
    existing = set(article.translations.values_list("language", flat=True)) if article else set()
    for language, content in data.translations.items():
        prefix = f"translations.{language}"
        if language not in languages:
            errors[prefix] = _("Unknown language %(value)r.") % {"value": language}
            continue
        title = (content.get("title") or "").strip()
        if not title or len(title) > 300:
            errors[f"{prefix}.title"] = _("A title is 1 to 300 characters.")
        if not (content.get("body") or "").strip():
            errors[f"{prefix}.body"] = _("The main body is required: every channel falls back to it.")
        if len(content.get("short_text") or "") > SHORT_TEXT_LIMIT:
            errors[f"{prefix}.short_text"] = _("The short text is at most %(n)s characters.") % {"n": SHORT_TEXT_LIMIT}
    if source not in existing and source not in data.translations and "source_language" not in errors:
        errors["translations"] = _("The source language (%(language)s) needs a translation.") % {"language": source}
    if data.related_articles and article is not None and any(a.pk == article.pk for a in data.related_articles):
        errors["related_articles"] = _("An article cannot be related to itself.")
    return errors


# Snapshots and versions ----------------------------------------------------------------------

def _snapshot(article: Article) -> dict:
    return {
        "slug": article.slug,
        "category": article.category.slug if article.category_id else None,
        "status": article.status,
        "visibility": article.visibility,
        "source_language": article.source_language,
        "tags": sorted(article.tags.values_list("name", flat=True)),
        "related_product_skus": list(article.related_product_skus),
        "related_articles": sorted(article.related_articles.values_list("slug", flat=True)),
        "translations": {
            t.language: {f: getattr(t, f) for f in CONTENT_FIELDS}
            for t in article.translations.order_by("language")
        },
    }


def _changes(before: dict | None, after: dict) -> list[str]:
    if before is None:
        return ["created"]
    changed = [k for k in after if k != "translations" and before.get(k) != after[k]]
    for language in sorted(set(before["translations"]) | set(after["translations"])):
        old, new = before["translations"].get(language), after["translations"].get(language)
        if old != new:
            fields = [f for f in CONTENT_FIELDS if (old or {}).get(f) != (new or {}).get(f)]
            changed.append(f"{language}: {', '.join(fields)}")
    return changed


def _record_version(article: Article, *, by, before: dict | None, note: str = "") -> ArticleVersion | None:
    after = _snapshot(article)
    changes = _changes(before, after)
    if not changes and not note:
        return None
    last = article.versions.order_by("-number").values_list("number", flat=True).first() or 0
    summary = "; ".join(([note] if note else []) + changes)[:500]
    return ArticleVersion.objects.create(article=article, number=last + 1, created_by=by, summary=summary, snapshot=after)


# Writes -------------------------------------------------------------------------------------

def translation_derive(translation: Translation) -> None:
    """Fill the columns derived from the content (HTML, plain text, folded title); no save."""
    translation.body_html = markdown_to_html(translation.body)
    translation.rich_html = markdown_to_html(translation.rich_body)
    translation.body_text = html_to_text(translation.body_html)
    translation.search_title = search.fold(translation.title)


def _write_translations(article: Article, translations: dict[str, dict[str, str]]) -> list[int]:
    current = {t.language: t for t in article.translations.all()}
    source = current.get(article.source_language)
    touched = []
    # The source first, so a translation saved with it is recorded against the new revision.
    for language in sorted(translations, key=lambda lang: lang != article.source_language):
        content = {f: (translations[language].get(f) or "").strip() for f in CONTENT_FIELDS}
        translation = current.get(language)
        if translation is not None and all(getattr(translation, f) == content[f] for f in CONTENT_FIELDS):
            continue
        if translation is None:
            translation = Translation(article=article, language=language)
        for name, value in content.items():
            setattr(translation, name, value)
        translation_derive(translation)
        if language == article.source_language:
            if translation.pk:
                translation.revision += 1
            translation.source_revision = translation.revision
            source = translation
        else:
            translation.source_revision = source.revision if source else 1
        translation.save()
        current[language] = translation
        touched.append(translation.pk)
    return touched


def _apply(article: Article, data: ArticleData) -> None:
    for name in ("slug", "status", "visibility", "source_language"):
        value = getattr(data, name)
        if value is not None:
            setattr(article, name, value)
    if data.category is not UNCHANGED:
        article.category = data.category
    if data.related_product_skus is not None:
        article.related_product_skus = sorted({s.strip() for s in data.related_product_skus})
    if article.status == Article.Status.PUBLISHED and article.published_at is None:
        article.published_at = timezone.now()


def _set_relations(article: Article, data: ArticleData) -> None:
    if data.tags is not None:
        names = sorted({t.strip().lower() for t in data.tags if t.strip()})
        Tag.objects.bulk_create([Tag(name=n) for n in names], ignore_conflicts=True)
        article.tags.set(Tag.objects.filter(name__in=names))
    if data.related_articles is not None:
        article.related_articles.set(data.related_articles)


def _check(data: ArticleData, article: Article | None) -> None:
    errors = check_article_data(data, article=article)
    if errors:
        raise ArticleInvalid(errors)


@transaction.atomic
def article_create(*, data: ArticleData, by, note: str = "") -> Article:
    _check(data, None)
    article = Article(created_by=by, updated_by=by)
    _apply(article, data)
    article.save()
    _set_relations(article, data)
    _write_translations(article, data.translations)
    search.index_translations(list(article.translations.values_list("pk", flat=True)))
    _record_version(article, by=by, before=None, note=note)
    return article


@transaction.atomic
def article_update(*, article: Article, data: ArticleData, by, note: str = "") -> ArticleVersion | None:
    """Apply ``data``; returns the new version, or None when nothing changed."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    _check(data, article)
    before = _snapshot(article)
    source_before = article.source_language
    _apply(article, data)
    article.updated_by = by
    article.save()
    _set_relations(article, data)
    touched = _write_translations(article, data.translations)
    if data.tags is not None or article.source_language != source_before:
        touched = list(article.translations.values_list("pk", flat=True))
    search.index_translations(touched)
    return _record_version(article, by=by, before=before, note=note)


def article_set_status(*, article: Article, status: str, by) -> ArticleVersion | None:
    return article_update(article=article, data=ArticleData(status=status), by=by)


def article_restore(*, article: Article, version: ArticleVersion, by) -> ArticleVersion | None:
    """Make the article what it was at ``version`` (a new version records the restore). Translations
    added after that version are removed; a category, related article or product since deleted
    stays empty."""
    if version.article_id != article.pk:
        raise NotFound(_("No such version of this article."))
    snap = version.snapshot
    with transaction.atomic():
        article.translations.exclude(language__in=list(snap["translations"])).delete()
        data = ArticleData(
            slug=snap["slug"] if not Article.objects.filter(slug=snap["slug"]).exclude(pk=article.pk).exists() else None,
            category=Category.objects.filter(slug=snap["category"]).first() if snap["category"] else None,
            status=snap["status"], visibility=snap["visibility"], source_language=snap["source_language"],
            tags=snap["tags"], related_product_skus=sorted(existing_skus(snap["related_product_skus"])),
            related_articles=list(Article.objects.filter(slug__in=snap["related_articles"]).exclude(pk=article.pk)),
            translations=snap["translations"],
        )
        return article_update(article=article, data=data, by=by,
                              note=_("restored version %(number)s") % {"number": version.number})


_TRANSLIT = str.maketrans({
    "ł": "l", "Ł": "L", "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
})


def slug_from(title: str) -> str:
    """An ASCII slug for a title in any of our languages (Cyrillic transliterated, ł -> l)."""
    return slugify(title.lower().translate(_TRANSLIT))


def article_from_ticket(*, ticket, by) -> Article:
    """A draft, in review, written from a ticket's conversation, for an admin to finish."""
    from tickets.models import TimelineEntry

    language = ticket.customer.language if ticket.customer.language in kb_languages() else "en"
    messages = list(
        ticket.entries.filter(kind=TimelineEntry.Kind.MESSAGE).order_by("created_at").values_list("direction", "text")[:20]
    )
    question = next((text for direction, text in messages if direction == TimelineEntry.Direction.INBOUND), "")
    answer = next((text for direction, text in reversed(messages) if direction == TimelineEntry.Direction.OUTBOUND), "")
    title = (ticket.subject or question.split("\n")[0] or _("Article from ticket #%(n)s") % {"n": ticket.number})[:300]
    body = "\n\n".join(part for part in (f"> {question.strip()}" if question.strip() else "", answer.strip()) if part)
    base = slug_from(title)[:100] or "article"
    slug = base
    n = 1
    while Article.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return article_create(
        data=ArticleData(
            slug=slug, status=Article.Status.IN_REVIEW, visibility=Article.Visibility.INTERNAL,
            source_language=language,
            translations={language: {"title": title, "body": body or title}},
        ),
        by=by, note=_("from ticket #%(n)s") % {"n": ticket.number},
    )


def category_create(*, slug: str, names: dict[str, str], parent: Category | None = None, position: int = 0) -> Category:
    if not SLUG.match(slug):
        raise ArticleInvalid({"slug": _("Use lowercase letters, digits and hyphens.")})
    if Category.objects.filter(slug=slug).exists():
        raise ArticleInvalid({"slug": _("Another category already has this slug.")})
    return Category.objects.create(slug=slug, names=names, parent=parent, position=position)


def feedback_record(*, article: Article, language: str, helpful: bool, comment: str = "") -> Feedback:
    from django.db.models import F

    with transaction.atomic():
        feedback = Feedback.objects.create(article=article, language=language, helpful=helpful, comment=comment.strip()[:2000])
        counter = "helpful_yes" if helpful else "helpful_no"
        Article.objects.filter(pk=article.pk).update(**{counter: F(counter) + 1})
    return feedback


def attachment_add(*, article: Article, upload, by) -> ArticleAttachment:
    import filetype

    if upload.size > MAX_ATTACHMENT:
        raise ArticleInvalid({"file": _("A file is at most 10 MB.")})
    head = upload.read(2048)
    upload.seek(0)
    kind = filetype.guess(head)
    content_type = kind.mime if kind else ("text/plain" if upload.name.endswith(".txt") else "")
    if content_type not in ATTACHMENT_TYPES:
        raise ArticleInvalid({"file": _("Only PNG, JPEG, GIF, WebP, PDF and text files.")})
    name = re.sub(r"[^\w.-]+", "-", upload.name.rsplit("/", 1)[-1])[-100:] or "file"
    attachment = ArticleAttachment(article=article, filename=name, content_type=content_type, size=upload.size, created_by=by)
    attachment.file.save(name, upload, save=False)
    attachment.save()
    return attachment
