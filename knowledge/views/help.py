"""The public help center under /help/<lang>/: published public articles only, for everyone.

Server-rendered and usable without JavaScript. The language is in the URL (one indexable page per
translation, with hreflang alternates); the interface follows it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import active_products_named
from knowledge import search, selectors, services
from knowledge.languages import kb_languages
from knowledge.models import Article, ArticleAttachment, Category, Translation
from knowledge.variants import serve
from omnicenter import csp

# "Was this helpful?": a few answers per article and visitor, a bounded number per visitor overall.
FEEDBACK_PER_ARTICLE = 3
FEEDBACK_PER_HOUR = 20
RESULTS_PER_PAGE = 20


def _language(lang: str) -> str:
    if lang not in kb_languages():
        raise Http404
    return lang


def _public_articles():
    return selectors.readable_articles(None)


def _render(request, lang: str, template: str, context: dict, status: int = 200) -> HttpResponse:
    with translation.override(lang):
        request.LANGUAGE_CODE = lang
        languages = [(code, name) for code, name in settings.LANGUAGES if code in kb_languages()]
        context = {"lang": lang, "help_languages": languages, **context}
        return render(request, template, context, status=status)


@require_GET
def help_root(request):
    lang = translation.get_language_from_request(request)
    return redirect("help-home", lang if lang in kb_languages() else settings.LANGUAGE_CODE)


def _categories_with_counts() -> list[tuple[Category, int, int]]:
    counts = dict(
        _public_articles().exclude(category=None).values_list("category").annotate(n=Count("pk")).values_list("category", "n")
    )
    return [(category, depth, counts.get(category.pk, 0)) for category, depth in selectors.category_tree()]


def _with_translation(articles, lang: str) -> list[tuple[Article, Translation]]:
    articles = articles.prefetch_related(Prefetch("translations", queryset=Translation.objects.only(
        "id", "article_id", "language", "title", "body_text", "short_text",
    )))
    rows = []
    for article in articles:
        chosen = selectors.pick_translation(article, lang)
        if chosen is not None:
            rows.append((article, chosen))
    return rows


@csp.strict
@require_GET
def help_home(request, lang: str):
    lang = _language(lang)
    recent = _with_translation(_public_articles().order_by("-published_at", "-pk")[:10], lang)
    return _render(request, lang, "knowledge/help/home.html", {
        "categories": _categories_with_counts(), "recent": recent, "alternates": _alternates("help-home", []),
    })


@csp.strict
@require_GET
def help_category(request, lang: str, slug: str):
    lang = _language(lang)
    category = Category.objects.select_related("parent").filter(slug=slug).first()
    if category is None:
        raise Http404
    articles = _public_articles().filter(category=category).order_by("-published_at", "pk")
    children = [(c, counts) for c, _depth, counts in _categories_with_counts() if c.parent_id == category.pk]
    return _render(request, lang, "knowledge/help/category.html", {
        "category": category, "articles": _with_translation(articles, lang), "children": children,
        "alternates": _alternates("help-category", [slug]),
    })


@csp.strict
@require_GET
def help_search(request, lang: str):
    lang = _language(lang)
    q = search.clean_query(request.GET.get("q", ""))
    page = None
    marks = {}
    if q:
        results = search.search(selectors.readable_translations(None), q=q, language=lang,
                                articles=selectors.readable_articles(None))
        page = Paginator(results, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
        marks = search.snippets(list(page), q=q, language=lang)
    return _render(request, lang, "knowledge/help/search.html", {
        "q": q, "page": page, "snippets": marks, "alternates": [],
    })


def _alternates(name: str, args: list) -> list[tuple[str, str]]:
    return [(code, reverse(name, args=[code, *args])) for code in kb_languages()]


@csp.strict
@require_GET
def help_article(request, lang: str, slug: str):
    lang = _language(lang)
    article = (
        _public_articles().select_related("category").prefetch_related(
            "translations",
            Prefetch("related_articles", queryset=_public_articles().prefetch_related(
                Prefetch("translations", queryset=Translation.objects.only("id", "article_id", "language", "title")),
            )),
        ).filter(slug=slug).first()
    )
    if article is None:
        raise Http404
    chosen = selectors.pick_translation(article, lang)
    available = sorted(t.language for t in article.translations.all())
    related = [(a, selectors.pick_translation(a, lang)) for a in article.related_articles.all()]
    return _render(request, lang, "knowledge/help/article.html", {
        "article": article, "translation": chosen, "served": serve(chosen, "help"),
        "available": available, "related": [(a, t) for a, t in related if t is not None],
        "products": active_products_named(article.related_product_skus, language=lang, channel="help"),
        "thanks": request.GET.get("thanks") == "1",
        "alternates": [(code, reverse("help-article", args=[code, slug])) for code in available],
        "canonical": reverse("help-article", args=[chosen.language, slug]),
    })


def _client_key(request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _over_limit(key: str, limit: int) -> bool:
    cache.add(key, 0, timeout=3600)
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        return False


@require_POST
@csp.strict
def help_feedback(request, lang: str, slug: str):
    lang = _language(lang)
    article = _public_articles().filter(slug=slug).first()
    if article is None:
        raise Http404
    helpful = request.POST.get("helpful")
    if helpful not in ("yes", "no"):
        return _render(request, lang, "knowledge/help/message.html",
                       {"message": _("Please choose yes or no."), "back": reverse("help-article", args=[lang, slug])}, 400)
    client = _client_key(request)
    if _over_limit(f"kb:fb:{client}:{article.pk}", FEEDBACK_PER_ARTICLE) or _over_limit(f"kb:fb:{client}", FEEDBACK_PER_HOUR):
        return _render(request, lang, "knowledge/help/message.html",
                       {"message": _("Thank you, we already have your answer."), "back": reverse("help-article", args=[lang, slug])}, 429)
    services.feedback_record(article=article, language=lang, helpful=helpful == "yes", comment=request.POST.get("comment", ""))
    return redirect(reverse("help-article", args=[lang, slug]) + "?thanks=1#feedback")


@require_GET
def help_file(request, public_id, name: str):
    attachment = ArticleAttachment.objects.select_related("article").filter(public_id=public_id).first()
    if attachment is None or not (
        attachment.article.is_public or selectors.readable_articles(request.user).filter(pk=attachment.article_id).exists()
        or _is_admin(request.user)
    ):
        raise Http404
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if not attachment.is_image:
        response["Content-Disposition"] = f'attachment; filename="{attachment.filename}"'
    return response


def _is_admin(user) -> bool:
    from omnicenter import roles

    return roles.is_admin(user)



