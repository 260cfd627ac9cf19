"""Knowledge-base admin screens under /app/admin/kb/ (admins only): list, Markdown editor with a
server-rendered live preview (htmx), per-language and per-channel editing, versions with diff and
restore, attachments, CSV/JSON import and export."""

from __future__ import annotations

import difflib
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from knowledge import selectors, services, transfer
from knowledge.forms import ArticleForm, ImportForm
from knowledge.languages import kb_languages
from knowledge.models import Article, ArticleVersion
from knowledge.rendering import markdown_to_html
from knowledge.services import ArticleData, ArticleInvalid
from omnicenter.transfer import export_response
from tickets.views import admin_required


def _article(article_id: int) -> Article:
    article = selectors.articles_for_admin().filter(pk=article_id).first()
    if article is None:
        raise Http404
    return article


@require_GET
@admin_required
def article_list(request):
    articles = selectors.articles_for_admin().order_by("-updated_at", "pk")
    q = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if q:
        articles = articles.filter(translations__title__icontains=q).distinct()
    if status in Article.Status.values:
        articles = articles.filter(status=status)
    page = Paginator(articles, 50).get_page(request.GET.get("page"))
    rows = []
    for article in page:
        translations = {t.language: t for t in article.translations.all()}
        source = translations.get(article.source_language)
        rows.append({
            "article": article, "title": (source or next(iter(translations.values()), None)),
            "languages": [
                (code, code in translations, bool(source and code in translations and translations[code].source_revision < source.revision))
                for code in kb_languages()
            ],
        })
    return render(request, "knowledge/admin/list.html", {
        "page": page, "rows": rows, "q": q, "status": status, "statuses": Article.Status.choices,
    })


def _data_from(form: ArticleForm, language: str) -> ArticleData:
    c = form.cleaned_data
    return ArticleData(
        slug=c["slug"], category=c["category"], status=c["status"], visibility=c["visibility"],
        source_language=c["source_language"],
        tags=[t.strip() for t in c["tags"].split(",") if t.strip()],
        related_product_skus=[s.strip() for s in c["related_product_skus"].split(",") if s.strip()],
        related_articles=c["related_articles"],
        translations={language: {f: c[f] for f in services.CONTENT_FIELDS}},
    )


def _add_errors(form: ArticleForm, exc: ArticleInvalid) -> None:
    for key, message in exc.errors.items():
        name = key.rsplit(".", 1)[-1]
        form.add_error(name if name in form.fields else None, message)


@require_http_methods(["GET", "POST"])
@admin_required
def article_new(request):
    language = request.GET.get("lang") or request.POST.get("source_language") or "en"
    form = ArticleForm(request.POST or None, initial={"status": "draft", "visibility": "public", "source_language": language})
    if request.method == "POST" and form.is_valid():
        try:
            article = services.article_create(data=_data_from(form, form.cleaned_data["source_language"]), by=request.user)
        except ArticleInvalid as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Article created."))
            return redirect("kb-admin-edit", article.pk)
    return render(request, "knowledge/admin/edit.html", {"form": form, "article": None, "lang": language, "tabs": []})


@require_http_methods(["GET", "POST"])
@admin_required
def article_edit(request, article_id: int, lang: str | None = None):
    article = _article(article_id)
    lang = lang or article.source_language
    if lang not in kb_languages():
        raise Http404
    translations = {t.language: t for t in article.translations.all()}
    current = translations.get(lang)
    source = translations.get(article.source_language)
    initial = {
        "slug": article.slug, "category": article.category_id, "status": article.status,
        "visibility": article.visibility, "source_language": article.source_language,
        "tags": ", ".join(article.tags.values_list("name", flat=True)),
        "related_product_skus": ", ".join(article.related_product_skus),
        "related_articles": ", ".join(article.related_articles.values_list("slug", flat=True)),
        **({f: getattr(current, f) for f in services.CONTENT_FIELDS} if current else {}),
    }
    form = ArticleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = _data_from(form, lang)
        if request.POST.get("action") == "publish":
            data.status = Article.Status.PUBLISHED
        try:
            version = services.article_update(article=article, data=data, by=request.user)
        except ArticleInvalid as exc:
            _add_errors(form, exc)
        else:
            if version is None:
                messages.info(request, _("Nothing changed."))
            else:
                messages.success(request, _("Saved as version %(n)s.") % {"n": version.number})
            return redirect("kb-admin-edit-lang", article.pk, lang)
    tabs = [
        (code, code in translations,
         bool(source and code in translations and code != article.source_language and translations[code].source_revision < source.revision))
        for code in kb_languages()
    ]
    return render(request, "knowledge/admin/edit.html", {
        "form": form, "article": article, "lang": lang, "tabs": tabs, "translation": current,
        "source": source if lang != article.source_language else None,
        "attachments": article.attachments.all(),
        "versions": article.versions.select_related("created_by")[:5],
    })


@require_POST
@admin_required
def preview(request):
    """The sanitized HTML of the Markdown being typed (htmx swaps it into the preview box). htmx
    posts the whole form from either textarea, so the field is the one htmx names as the trigger
    (``HX-Trigger-Name``): the main body unless it is the rich body."""
    field = "rich_body" if request.headers.get("HX-Trigger-Name") == "rich_body" else "body"
    text = request.POST.get(field) or ""
    html = markdown_to_html(text[:200_000])
    return HttpResponse(html or f'<p class="hint">{_("Nothing to preview.")}</p>')


@require_POST
@admin_required
def attachment_upload(request, article_id: int):
    article = _article(article_id)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a file."))
    else:
        try:
            attachment = services.attachment_add(article=article, upload=upload, by=request.user)
        except ArticleInvalid as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Uploaded %(name)s.") % {"name": attachment.filename})
    return redirect("kb-admin-edit", article.pk)


def _snapshot_lines(snapshot: dict) -> list[str]:
    lines = []
    for key in ("slug", "category", "status", "visibility", "source_language", "tags", "related_product_skus", "related_articles"):
        lines.append(f"{key}: {json.dumps(snapshot.get(key), ensure_ascii=False)}")
    for language, content in sorted(snapshot.get("translations", {}).items()):
        for name in services.CONTENT_FIELDS:
            lines.append(f"[{language}] {name}:")
            lines.extend(f"    {line}" for line in (content.get(name) or "").splitlines() or [""])
    return lines


def version_diff(old: ArticleVersion, new: ArticleVersion) -> list[tuple[str, str]]:
    """Unified diff lines of two versions, each with its kind (add, del, hunk, same)."""
    diff = difflib.unified_diff(_snapshot_lines(old.snapshot), _snapshot_lines(new.snapshot),
                                f"v{old.number}", f"v{new.number}", lineterm="", n=2)
    kinds = []
    for line in diff:
        kind = "hunk" if line.startswith(("@@", "---", "+++")) else "add" if line.startswith("+") else "del" if line.startswith("-") else "same"
        kinds.append((kind, line))
    return kinds


@require_GET
@admin_required
def versions(request, article_id: int):
    article = _article(article_id)
    all_versions = list(article.versions.select_related("created_by"))
    by_number = {v.number: v for v in all_versions}
    diff = None
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    if a.isdigit() and b.isdigit():
        old, new = by_number.get(int(a)), by_number.get(int(b))
        if old is None or new is None:
            raise Http404
        diff = version_diff(old, new)
    elif len(all_versions) > 1:
        a, b = str(all_versions[1].number), str(all_versions[0].number)
    return render(request, "knowledge/admin/versions.html", {
        "article": article, "versions": all_versions, "diff": diff, "a": a, "b": b,
    })


@require_POST
@admin_required
def restore(request, article_id: int, number: int):
    article = _article(article_id)
    version = article.versions.filter(number=number).first()
    if version is None:
        raise Http404
    new = services.article_restore(article=article, version=version, by=request.user)
    if new is None:
        messages.info(request, _("The article is already as in version %(n)s.") % {"n": number})
    else:
        messages.success(request, _("Version %(old)s restored as version %(new)s.") % {"old": number, "new": new.number})
    return redirect("kb-admin-versions", article.pk)


@require_http_methods(["GET", "POST"])
@admin_required
def transfer_page(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        report = transfer.articles_import(text=upload["content"], fmt=upload["format"], by=request.user,
                                          dry_run=form.cleaned_data["dry_run"])
    status = 400 if report is not None and not report.ok else 200
    return render(request, "knowledge/admin/transfer.html", {"form": form, "report": report}, status=status)


@require_GET
@admin_required
def export(request, fmt: str):
    exports = {"csv": transfer.export_csv, "json": transfer.export_json}
    if fmt not in exports:
        raise Http404
    return export_response(exports[fmt](), fmt=fmt, name="articles")
