"""Reads that decide who sees which articles. Every caller goes through these.

- Anonymous readers, help-center visitors and read-only (bot) API tokens: published public articles.
- Agents, supervisors and admins (session or full token): published articles, public and internal.
- Admin screens: everything (``articles_for_admin``).
"""

from __future__ import annotations

import json

from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from knowledge import search
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


# What an API search hit needs of a translation and its article, read as values: a page of 50
# model instances with their prefetches cost more CPU than the search itself.
ROW = ("id", "article_id", "language", "title", "body", "body_html", "body_text", "short_text", "source_revision",
        "article__slug", "article__status", "article__visibility", "article__source_language", "article__updated_at",
        "article__related_product_skus", "article__category__slug")
RICH = ("rich_body", "rich_html")


def page_rows_portable(ids: list[int], *, articles, columns: tuple[str, ...], headline) -> dict[int, dict]:
    """Four statements (any database): the rows with their snippets, the articles' languages and
    revisions, tags, and the related articles this reader may see."""
    rows = Translation.objects.filter(pk__in=ids)
    if headline is not None:
        rows = rows.annotate(headline_text=headline)
        columns = (*columns, "headline_text")
    by_id = {row["id"]: row for row in rows.values(*columns)}
    article_ids = {row["article_id"] for row in by_id.values()}
    revisions: dict[int, dict[str, int]] = {}
    for article_id, lang, revision in Translation.objects.filter(article_id__in=article_ids).values_list(
            "article_id", "language", "revision"):
        revisions.setdefault(article_id, {})[lang] = revision
    tags: dict[int, list[str]] = {}
    for article_id, name in Article.tags.through.objects.filter(article_id__in=article_ids).order_by(
            "tag__name").values_list("article_id", "tag__name"):
        tags.setdefault(article_id, []).append(name)
    related: dict[int, list[str]] = {}
    for article_id, slug in Article.related_articles.through.objects.filter(
            from_article_id__in=article_ids, to_article__in=articles).order_by("-to_article__updated_at").values_list(
            "from_article_id", "to_article__slug"):
        related.setdefault(article_id, []).append(slug)
    for row in by_id.values():
        article_revisions = revisions.get(row["article_id"], {})
        row["languages"] = sorted(article_revisions)
        row["source_now"] = article_revisions.get(row["article__source_language"])
        row["tags"] = tags.get(row["article_id"], [])
        row["related"] = related.get(row["article_id"], [])
    return by_id


def page_rows_postgres(ids: list[int], *, articles, columns: tuple[str, ...], headline) -> dict[int, dict]:
    """The same rows in one statement (PostgreSQL): languages, tags and related articles as arrays.
    Each ORM statement cost 2 to 4 ms of Python on these machines, more than its SQL."""
    readable, readable_params = articles.order_by().values("pk").query.sql_with_params()
    rich = ", t.rich_body, t.rich_html" if "rich_body" in columns else ""
    headline_sql, headline_params = headline.as_sql(None, connection) if headline is not None else ("NULL", [])
    sql = f"""
        SELECT t.id, t.article_id, t.language, t.title, t.body, t.body_html, t.body_text, t.short_text, t.source_revision,
               a.slug, a.status, a.visibility, a.source_language, a.updated_at, a.related_product_skus, c.slug {rich},
               ARRAY(SELECT s.language FROM knowledge_translation s WHERE s.article_id = a.id),
               (SELECT s.revision FROM knowledge_translation s WHERE s.article_id = a.id AND s.language = a.source_language),
               ARRAY(SELECT g.name FROM knowledge_article_tags at JOIN knowledge_tag g ON g.id = at.tag_id
                     WHERE at.article_id = a.id ORDER BY g.name),
               ARRAY(SELECT r.slug FROM knowledge_article_related_articles ra JOIN knowledge_article r ON r.id = ra.to_article_id
                     WHERE ra.from_article_id = a.id AND r.id IN ({readable}) ORDER BY r.updated_at DESC),
               {headline_sql}
        FROM knowledge_translation t JOIN knowledge_article a ON a.id = t.article_id
        LEFT JOIN knowledge_category c ON c.id = a.category_id
        WHERE t.id = ANY(%s)
    """  # noqa: S608 (constant SQL and Django-compiled subqueries; every value is a parameter)
    names = (*ROW, *(RICH if rich else ()), "languages", "source_now", "tags", "related", "headline_text")
    by_id = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*readable_params, *headline_params, list(ids)])
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            skus = row["article__related_product_skus"]
            row["article__related_product_skus"] = json.loads(skus) if isinstance(skus, str) else skus
            row["languages"] = sorted(row["languages"])
            by_id[row["id"]] = row
    return by_id


def search_page_rows(ids: list[int], *, articles: QuerySet[Article], rich: bool, q: str, language: str) -> dict[int, dict]:
    """Plain rows of these translations for an API page of search hits, by id: the translation's
    columns (``ROW``, plus ``RICH`` when the rich variant is served), its article's as
    ``article__…``, ``languages`` (sorted), ``source_now`` (the source translation's revision),
    ``tags``, ``related`` (slugs of the related articles within ``articles``) and
    ``headline_text`` (the raw snippet, None when there is none). One statement on PostgreSQL,
    four elsewhere, whatever the page size."""
    columns = (*ROW, *RICH) if rich else ROW
    if connection.vendor == "postgresql":
        headline = search.headline(q=q, language=language, column="t.body_text")
        return page_rows_postgres(ids, articles=articles, columns=columns, headline=headline)
    return page_rows_portable(ids, articles=articles, columns=columns, headline=search.headline(q=q, language=language))
