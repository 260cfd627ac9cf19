"""Knowledge base: nested categories, articles, their translations, per-channel variants,
versions, attachments and help-center feedback.

An article has one translation per language. Each translation carries the main Markdown body and
two optional channel variants: a short plain text (SMS, WhatsApp, chat) and a full rich body
(email, portal, help center). A missing variant falls back to the main body (knowledge/variants.py).
The source-language translation has a revision counter; other translations remember the revision
they were translated from, so an edit of the source marks them out of date.

Related products are stored as a list of catalog SKUs (``related_product_skus``), a product's
stable public key, so no knowledge migration depends on the catalog's. Every save checks that each
SKU is a catalog product (knowledge.services); the help center shows the active ones by name, in
the page's language (catalog.selectors.active_products_named).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from knowledge.fields import SearchVectorField


class Category(models.Model):
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("parent"),
    )
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    # {"en": "Orders", "ru": "Заказы", ...}: a category has a name per language, nothing else to translate.
    names = models.JSONField(_("names"), default=dict)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.name_in(settings.LANGUAGE_CODE)

    def name_in(self, language: str) -> str:
        return self.names.get(language) or self.names.get(settings.LANGUAGE_CODE) or next(iter(self.names.values()), self.slug)


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        IN_REVIEW = "in_review", _("In review")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    class Visibility(models.TextChoices):
        PUBLIC = "public", _("Public")
        INTERNAL = "internal", _("Internal (agents only)")

    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="articles", verbose_name=_("category"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    visibility = models.CharField(_("visibility"), max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    source_language = models.CharField(_("source language"), max_length=8, default="en")
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles", verbose_name=_("tags"))
    related_articles = models.ManyToManyField("self", blank=True, symmetrical=False, verbose_name=_("related articles"))
    related_product_skus = models.JSONField(_("related products (SKUs)"), default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["status", "visibility"])]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLISHED and self.visibility == self.Visibility.PUBLIC


class Translation(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(_("language"), max_length=8)
    title = models.CharField(_("title"), max_length=300)
    body = models.TextField(_("body (Markdown)"))
    short_text = models.TextField(_("short text (SMS, WhatsApp, chat)"), blank=True)
    rich_body = models.TextField(_("rich body (email, portal, help center; Markdown)"), blank=True)
    # Derived on every save by knowledge.services, never edited: sanitized HTML and plain text.
    body_html = models.TextField(blank=True, editable=False)
    rich_html = models.TextField(blank=True, editable=False)
    body_text = models.TextField(blank=True, editable=False)
    # The source translation counts its content revisions; a translation records the source
    # revision it was made from. Fewer than the source's now: out of date.
    revision = models.PositiveIntegerField(default=1)
    source_revision = models.PositiveIntegerField(default=1)
    # The title lowercased without diacritics (knowledge.search.fold), for trigram typo matching
    # (copied into SearchEntry, where it is indexed).
    search_title = models.CharField(max_length=300, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("translation")
        verbose_name_plural = _("translations")
        constraints = [models.UniqueConstraint(fields=["article", "language"], name="kb_one_translation_per_language")]
        indexes = [models.Index(fields=["language", "article"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.language})"


class SearchEntry(models.Model):
    """What PostgreSQL searches for one translation, in a narrow table of its own.

    Written by knowledge.search.index_translations whenever a service saves a translation (and
    unused on SQLite). The vectors once sat beside the bodies in ``knowledge_translation``: a
    common word then read one wide heap page per matching translation (thousands, 400 MB of
    table), which was most of a search's time. Here a row is about 150 bytes (the whole vector is
    stored out of line, see migration 0003), so finding candidates touches a few MB, and only the
    ranked candidates' vectors are read (docs/performance.md).
    """

    translation = models.OneToOneField(Translation, primary_key=True, on_delete=models.CASCADE, related_name="search_entry")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+", db_index=False)
    language = models.CharField(max_length=8)
    search_title = models.CharField(max_length=300, blank=True)
    # The title alone (small): "does the title match?" without reading the whole vector.
    title_vector = SearchVectorField(null=True)
    # Weighted tsvector (title A, tags and short text B, body C) in the language's text-search
    # configuration (unaccent() cannot sit in an index expression, so it is a stored column).
    search_vector = SearchVectorField(null=True)

    class Meta:
        indexes = [models.Index(fields=["article"], name="kb_searchentry_article")]

    def __str__(self) -> str:
        return f"search entry {self.translation_id}"


class ArticleVersion(models.Model):
    """A snapshot of the whole article after one save: who, when, what changed, and the content."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    summary = models.CharField(max_length=500, blank=True)
    snapshot = models.JSONField()

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["article", "number"], name="kb_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.article_id} v{self.number}"


def attachment_path(instance: ArticleAttachment, filename: str) -> str:
    return f"kb/{instance.public_id}/{filename}"


class ArticleAttachment(models.Model):
    """An image or file of an article; Markdown refers to it by its URL (/help/files/<id>/<name>)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=200)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.filename

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


class Feedback(models.Model):
    """One "was this helpful?" answer from the help center."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="feedback")
    language = models.CharField(max_length=8)
    helpful = models.BooleanField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.article_id} {'+' if self.helpful else '-'}"
