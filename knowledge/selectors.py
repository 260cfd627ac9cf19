"""Reads that decide who sees which articles. Every caller goes through these.

- Anonymous readers, help-center visitors and read-only (bot) API tokens: published public articles.
- Agents, supervisors and admins (session or full token): published articles, public and internal.
- Admin screens: everything (``articles_for_admin``).
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from knowledge.languages import best_language
from knowledge.models import Article, Category, Translation
from omnicenter import roles
from omnicenter.models import ApiToken


def can_see_internal(user, auth=None) -> bool:
    if isinstance(auth, ApiToken) and auth.read_only:
        return False  # bot tokens serve customers: never internal notes
    return roles.is_agent(user)


def readable_articles(user, auth=None) -> QuerySet[Article]:
    articles = Article.objects.filter(status=Article.Status.PUBLISHED)
    if not can_see_internal(user, auth):
        articles = articles.filter(visibility=Article.Visibility.PUBLIC)
    return articles


def readable_translations(user, auth=None) -> QuerySet[Translation]:
    return (
        Translation.objects.filter(article__in=readable_articles(user, auth))
        .select_related("article__category")
    )


def article_for_reader(user, slug_or_id: str, auth=None) -> Article:
    articles = readable_articles(user, auth).select_related("category").prefetch_related(
        "translations", "tags", Prefetch("related_articles", queryset=readable_articles(user, auth)),
    )
    lookup = {"pk": int(slug_or_id)} if str(slug_or_id).isdigit() else {"slug": slug_or_id}
    article = articles.filter(**lookup).first()
    if article is None:
        raise Http404
    return article


def articles_for_admin() -> QuerySet[Article]:
    return (
        Article.objects.select_related("category", "updated_by")
        .prefetch_related(Prefetch("translations", queryset=Translation.objects.only(
            "id", "article_id", "language", "title", "revision", "source_revision",
        )))
    )


def pick_translation(article: Article, language: str | None) -> Translation | None:
    """The article's translation in ``language``, else the default or source language (prefetched)."""
    translations = {t.language: t for t in article.translations.all()}
    chosen = best_language(language, list(translations), source=article.source_language)
    return translations.get(chosen) if chosen else None


def is_out_of_date(translation: Translation, article: Article) -> bool:
    if translation.language == article.source_language:
        return False
    source = next((t for t in article.translations.all() if t.language == article.source_language), None)
    return source is not None and translation.source_revision < source.revision


def category_tree() -> list[tuple[Category, int]]:
    """Every category with its depth, parents before children (one query)."""
    categories = list(Category.objects.all())
    children: dict[int | None, list[Category]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category)
    ordered: list[tuple[Category, int]] = []

    def walk(parent_id: int | None, depth: int) -> None:
        for category in children.get(parent_id, []):
            ordered.append((category, depth))
            walk(category.pk, depth + 1)

    walk(None, 0)
    return ordered


def descendant_ids(category: Category) -> list[int]:
    tree: dict[int | None, list[int]] = {}
    for pk, parent in Category.objects.values_list("pk", "parent_id"):
        tree.setdefault(parent, []).append(pk)
    ids, stack = [], [category.pk]
    while stack:
        current = stack.pop()
        ids.append(current)
        stack.extend(tree.get(current, []))
    return ids
