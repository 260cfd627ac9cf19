"""`/api/v1/kb/articles/`: search and read articles for bots, shops and channels.

`?lang=` picks the translation (falling back to the default, then the source language) and
`?channel=` the variant (short for sms/whatsapp/chat, rich for email/portal/help, else the main
body). Each article in a response carries ``served``: the language and variant it is in, and
whether either is a fallback. Readable without signing in (public articles only, as the help
center); read-only tokens also see public articles only; staff sessions and full tokens see
internal articles too.
"""

from __future__ import annotations

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


def represent(article: Article, translation: Translation, *, requested: str, channel: str | None,
              snippet: str | None = None) -> dict:
    served = serve(translation, channel)
    return {
        "id": article.pk,
        "slug": article.slug,
        "title": translation.title,
        "text": served.text,
        "html": served.html,
        "markdown": served.markdown,
        "snippet": snippet,
        "served": {
            "language": translation.language,
            "requested_language": requested,
            "language_fallback": translation.language != requested,
            "channel": channel,
            "variant": served.variant,
            "variant_fallback": served.variant != variant_kind(channel),
            "out_of_date": selectors.is_out_of_date(translation, article),
        },
        "visibility": article.visibility,
        "category": article.category.slug if article.category_id else None,
        "tags": [t.name for t in article.tags.all()],
        "languages": sorted(t.language for t in article.translations.all()),
        "related_articles": [a.slug for a in article.related_articles.all()],
        "related_product_skus": list(article.related_product_skus),
        "url": help_url(article, translation.language),
        "updated_at": serializers.DateTimeField().to_representation(article.updated_at),
    }


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

    def _articles(self):
        articles = selectors.readable_articles(self.request.user, self.request.auth)
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
        # Of the article's other translations only their languages and revisions are needed.
        siblings = Translation.objects.only("id", "article_id", "language", "revision", "source_revision")
        prefetch = (Prefetch("article__translations", queryset=siblings), "article__tags",
                    Prefetch("article__related_articles", queryset=related.queryset))
        if q:
            translations = search.search(
                Translation.objects.filter(article__in=self._articles()).select_related("article__category")
                .defer(*selectors.SEARCH_COLUMNS).prefetch_related(*prefetch), q=q, language=language,
            )
            page = self.paginate_queryset(translations)
            marks = search.snippets(page, q=q, language=language)
            rows = [represent(t.article, t, requested=language, channel=channel, snippet=marks.get(t.pk)) for t in page]
            return self.get_paginated_response(rows)
        articles = (
            self._articles().select_related("category")
            .prefetch_related(Prefetch("translations", queryset=Translation.objects.defer(*selectors.SEARCH_COLUMNS)),
                              "tags", related).order_by("-updated_at", "pk")
        )
        page = self.paginate_queryset(articles)
        rows = []
        for article in page:
            translation = selectors.pick_translation(article, language)
            if translation is not None:
                rows.append(represent(article, translation, requested=language, channel=channel))
        return self.get_paginated_response(rows)

    @extend_schema(parameters=KB_PARAMETERS[1:3], responses=ArticleOutSerializer)
    def retrieve(self, request, slug=None, *args, **kwargs):
        language, channel = self._params()
        article = selectors.article_for_reader(request.user, slug, request.auth)
        translation = selectors.pick_translation(article, language)
        return Response(represent(article, translation, requested=language, channel=channel))



