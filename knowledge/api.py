"""`/api/v1/kb/articles/`: search and read articles for bots, shops and channels.

`?lang=` picks the translation (falling back to the default, then the source language) and
`?channel=` the variant (short for sms/whatsapp/chat, rich for email/portal/help, else the main
body). Each article in a response carries ``served``: the language and variant it is in, and
whether either is a fallback. Readable without signing in (public articles only, as the help
center); read-only tokens also see public articles only; staff sessions and full tokens see
internal articles too.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from knowledge import search, selectors
from knowledge.languages import CHANNELS, kb_languages
from knowledge.models import Article, Translation
from knowledge.variants import serve, variant_kind
from omnicenter.pagination import SearchPagination


class ReadOnly(permissions.BasePermission):
    """Anyone may read; what they see is narrowed by knowledge.selectors."""

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS


def help_url(article: Article, language: str) -> str | None:
    if not article.is_public:
        return None
    return settings.PUBLIC_BASE_URL + reverse("help-article", args=[language, article.slug])


class ServedSerializer(serializers.Serializer):
    language = serializers.CharField()
    requested_language = serializers.CharField()
    language_fallback = serializers.BooleanField()
    channel = serializers.CharField(allow_null=True)
    variant = serializers.ChoiceField(choices=["short", "rich", "main"])
    variant_fallback = serializers.BooleanField()
    out_of_date = serializers.BooleanField()


class ArticleOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    title = serializers.CharField()
    text = serializers.CharField(help_text="plain text of the served variant")
    html = serializers.CharField(help_text="sanitized HTML of the served variant")
    markdown = serializers.CharField()
    snippet = serializers.CharField(allow_null=True, help_text="HTML excerpt with <mark> around matches (searches only)")
    served = ServedSerializer()
    visibility = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    related_articles = serializers.ListField(child=serializers.CharField())
    related_product_skus = serializers.ListField(child=serializers.CharField())
    url = serializers.CharField(allow_null=True, help_text="public help-center page (public articles only)")
    updated_at = serializers.DateTimeField()


_DATETIME = serializers.DateTimeField()


class _HelpUrls:
    """``help_url`` for many rows: one ``reverse`` per language, not per row."""

    PLACEHOLDER = "slug-placeholder"

    def __init__(self):
        self.templates: dict[str, str] = {}

    def get(self, language: str, slug: str) -> str:
        if language not in self.templates:
            self.templates[language] = settings.PUBLIC_BASE_URL + reverse("help-article", args=[language, self.PLACEHOLDER])
        return self.templates[language].replace(self.PLACEHOLDER, slug)


def _item(row: dict, *, requested: str, channel: str | None, snippet: str | None, help_urls: _HelpUrls) -> dict:
    """One article as the API serves it, from the plain row ``selectors.search_page_rows`` reads
    (``represent`` makes the same row of model instances): the one place the shape is built."""
    translation = SimpleNamespace(**{"rich_body": "", "rich_html": "", **row})
    served = serve(translation, channel)
    source = row["article__source_language"]
    public = row["article__status"] == Article.Status.PUBLISHED and row["article__visibility"] == Article.Visibility.PUBLIC
    return {
        "id": row["article_id"],
        "slug": row["article__slug"],
        "title": row["title"],
        "text": served.text,
        "html": served.html,
        "markdown": served.markdown,
        "snippet": snippet,
        "served": {
            "language": row["language"],
            "requested_language": requested,
            "language_fallback": row["language"] != requested,
            "channel": channel,
            "variant": served.variant,
            "variant_fallback": served.variant != variant_kind(channel),
            "out_of_date": row["language"] != source and row["source_now"] is not None and row["source_revision"] < row["source_now"],
        },
        "visibility": row["article__visibility"],
        "category": row["article__category__slug"],
        "tags": row["tags"],
        "languages": row["languages"],
        "related_articles": row["related"],
        "related_product_skus": list(row["article__related_product_skus"]),
        "url": help_urls.get(row["language"], row["article__slug"]) if public else None,
        "updated_at": _DATETIME.to_representation(row["article__updated_at"]),
    }


def represent(article: Article, translation: Translation, *, requested: str, channel: str | None,
              help_urls: _HelpUrls | None = None) -> dict:
    """``_item`` of a prefetched article (``translations``, ``tags``, the readable
    ``related_articles``) and one of its translations: lists without a search, and one article."""
    translations = {t.language: t for t in article.translations.all()}
    source = translations.get(article.source_language)
    row = {
        **{name: getattr(translation, name) for name in selectors.ROW if "__" not in name},
        **{name: getattr(translation, name) for name in selectors.RICH},
        **{name: getattr(article, name.removeprefix("article__")) for name in selectors.ROW
           if name.startswith("article__") and name != "article__category__slug"},
        "article__category__slug": article.category.slug if article.category_id else None,
        "languages": sorted(translations),
        "source_now": source.revision if source else None,
        "tags": [t.name for t in article.tags.all()],
        "related": [a.slug for a in article.related_articles.all()],
    }
    return _item(row, requested=requested, channel=channel, snippet=None, help_urls=help_urls or _HelpUrls())


def search_page(ids: list[int], *, articles, requested: str, channel: str | None, q: str) -> list[dict]:
    """The API items of these translations, in this order, plus their snippets, read as plain
    values (``selectors.search_page_rows``): a page of 50 model instances with their prefetches
    cost more CPU than the search itself. One statement on PostgreSQL, four elsewhere, whatever
    the page size."""
    if not ids:
        return []
    by_id = selectors.search_page_rows(ids, articles=articles, rich=variant_kind(channel) == "rich", q=q, language=requested)
    help_urls = _HelpUrls()
    return [
        _item(by_id[pk], requested=requested, channel=channel, help_urls=help_urls,
              snippet=search.snippet(by_id[pk]["body_text"], q=q, headline_text=by_id[pk].get("headline_text")))
        for pk in ids if pk in by_id  # a translation deleted since it was found is skipped
    ]


KB_PARAMETERS = [
    OpenApiParameter("q", str, description="search text (stemmed per language, typo-tolerant on PostgreSQL)"),
    OpenApiParameter("lang", str, description="translation to serve and search: en, ru, pl, …"),
    OpenApiParameter("channel", str, description="variant to serve: " + ", ".join(CHANNELS)),
    OpenApiParameter("category", str, description="category slug (includes its subcategories)"),
    OpenApiParameter("tag", str),
]


class ArticleViewSet(viewsets.GenericViewSet):
    """Knowledge-base articles, in the translation and channel variant asked for."""

    permission_classes = [ReadOnly]
    pagination_class = SearchPagination
    serializer_class = ArticleOutSerializer
    lookup_value_regex = r"[a-z0-9-]+"
    lookup_field = "slug"

    def _params(self) -> tuple[str, str | None]:
        language = self.request.query_params.get("lang") or settings.LANGUAGE_CODE
        channel = self.request.query_params.get("channel") or None
        errors = {}
        if language not in kb_languages():
            errors["lang"] = [_("Unknown language; one of: %(list)s.") % {"list": ", ".join(kb_languages())}]
        if channel is not None and channel not in CHANNELS:
            errors["channel"] = [_("Unknown channel; one of: %(list)s.") % {"list": ", ".join(CHANNELS)}]
        if errors:
            raise ValidationError(errors)
        return language, channel

    def _articles(self, readable=None):
        articles = readable if readable is not None else selectors.readable_articles(self.request.user, self.request.auth)
        params = self.request.query_params
        if params.get("category"):
            from knowledge.models import Category

            category = Category.objects.filter(slug=params["category"]).first()
            articles = articles.filter(category_id__in=selectors.descendant_ids(category) if category else [])
        if params.get("tag"):
            articles = articles.filter(tags__name=params["tag"].lower())
        return articles

    def get_queryset(self):  # for the schema generator
        return selectors.readable_articles(self.request.user, getattr(self.request, "auth", None))

    @extend_schema(parameters=KB_PARAMETERS, responses=ArticleOutSerializer(many=True))
    def list(self, request, *args, **kwargs):
        language, channel = self._params()
        q = search.clean_query(request.query_params.get("q", ""))
        # Related articles are listed only when this reader may see them too.
        related = Prefetch("related_articles", queryset=selectors.readable_articles(request.user, request.auth))
        if q:
            # Search: the ranked ids (one statement, at most search.RANK_LIMIT) are the paginated list,
            # so the count costs nothing; only the page's rows are read, as plain values.
            readable = selectors.readable_articles(request.user, request.auth)
            articles = self._articles(readable)
            ids = search.translation_ids(articles, q=q, language=language)
            page = self.paginate_queryset(ids)
            return self.get_paginated_response(search_page(page, articles=readable,
                                                           requested=language, channel=channel, q=q))
        articles = (
            self._articles().select_related("category")
            .prefetch_related("translations", "tags", related).order_by("-updated_at", "pk")
        )
        page = self.paginate_queryset(articles)
        help_urls = _HelpUrls()
        rows = []
        for article in page:
            translation = selectors.pick_translation(article, language)
            if translation is not None:
                rows.append(represent(article, translation, requested=language, channel=channel, help_urls=help_urls))
        return self.get_paginated_response(rows)

    @extend_schema(parameters=KB_PARAMETERS[1:3], responses=ArticleOutSerializer)
    def retrieve(self, request, slug=None, *args, **kwargs):
        language, channel = self._params()
        article = selectors.article_for_reader(request.user, slug, request.auth)
        translation = selectors.pick_translation(article, language)
        return Response(represent(article, translation, requested=language, channel=channel))



