"""Articles are built through knowledge.services (the one path that versions and indexes them)."""

from __future__ import annotations

import factory

from knowledge import services
from knowledge.models import Article, Category
from knowledge.services import ArticleData


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"category-{n}")
    names = factory.LazyAttribute(lambda c: {"en": c.slug.title(), "ru": c.slug, "pl": c.slug})


class ArticleFactory(factory.Factory):
    """``ArticleFactory(title="...", body="...", language="ru", ...)``; ``translations={...}`` for more."""

    class Meta:
        model = Article

    slug = factory.Sequence(lambda n: f"article-{n}")
    language = "en"
    title = factory.Sequence(lambda n: f"Article {n}")
    body = "Some helpful text."
    short_text = ""
    rich_body = ""
    status = Article.Status.PUBLISHED
    visibility = Article.Visibility.PUBLIC
    category = None
    tags = factory.List([])
    translations = None
    by = None

    @classmethod
    def _create(cls, model_class, *, language, title, body, short_text, rich_body, translations, by, **kwargs):
        content = translations or {language: {"title": title, "body": body, "short_text": short_text, "rich_body": rich_body}}
        data = ArticleData(translations=content, source_language=language, **kwargs)
        return services.article_create(data=data, by=by)

    _build = _create
