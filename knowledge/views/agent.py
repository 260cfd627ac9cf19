"""The knowledge panel of the ticket sidebar: suggestions from the ticket's text, a search box,
and buttons that insert the channel's variant (or a help-center link) into the reply composer."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from knowledge import search, selectors, services
from knowledge.api import help_url
from knowledge.languages import kb_languages
from knowledge.variants import serve
from omnicenter import roles
from tickets.models import TimelineEntry
from tickets.selectors import ticket_for_agent
from tickets.views import staff_required

SUGGESTIONS = 5


def _language(ticket) -> str:
    language = ticket.customer.language
    return language if language in kb_languages() else (get_language() or "en")[:2]


def _channel(ticket) -> str | None:
    return ticket.origin_channel.kind if ticket.origin_channel_id else None


def _ticket_text(ticket) -> str:
    texts = list(
        ticket.entries.filter(kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND)
        .order_by("-created_at").values_list("text", flat=True)[:2]
    )
    return " ".join([ticket.subject, *texts])[:2000]


def _items(request, translations, *, channel: str | None, q: str, language: str) -> list[dict]:
    marks = search.snippets(translations, q=q, language=language) if q else {}
    items = []
    for t in translations:
        served = serve(t, channel)
        items.append({
            "title": t.title, "slug": t.article.slug, "internal": not t.article.is_public,
            "variant": served.variant, "text": served.text, "link": help_url(t.article, t.language),
            "snippet": marks.get(t.pk, ""), "language": t.language,
        })
    return items


def _results(request, ticket, *, q: str, suggest: bool) -> dict:
    language, channel = _language(ticket), _channel(ticket)
    base = selectors.readable_translations(request.user).select_related("article")
    if suggest:
        found = list(search.search(base, q=_ticket_text(ticket), language=language, any_word=True,
                                   articles=selectors.readable_articles(request.user))[:SUGGESTIONS])
        return {"items": _items(request, found, channel=channel, q="", language=language), "suggested": True}
    found = list(search.search(base, q=q, language=language, articles=selectors.readable_articles(request.user))[:10])
    return {"items": _items(request, found, channel=channel, q=q, language=language), "suggested": False, "q": q}


def panel_context(request, ticket) -> dict | None:
    """Context of knowledge/_ticket_panel.html (registered in KnowledgeConfig.ready)."""
    if request is None or not roles.is_agent(request.user):
        return None
    return {
        **_results(request, ticket, q="", suggest=True),
        "panel_url": reverse("kb-panel", args=[ticket.pk]),
        "from_ticket_url": reverse("kb-from-ticket", args=[ticket.pk]) if roles.is_supervisor(request.user) else "",
        "kb_language": _language(ticket), "kb_channel": _channel(ticket),
    }


@require_GET
@staff_required
def kb_panel(request, ticket_id: int):
    ticket = ticket_for_agent(request.user, ticket_id)
    q = search.clean_query(request.GET.get("q", ""))
    context = _results(request, ticket, q=q, suggest=not q)
    return render(request, "knowledge/_panel_results.html", context)


@require_POST
@staff_required
def kb_from_ticket(request, ticket_id: int):
    if not roles.is_supervisor(request.user):
        raise Http404
    ticket = ticket_for_agent(request.user, ticket_id)
    article = services.article_from_ticket(ticket=ticket, by=request.user)
    messages.success(request, _("Draft article “%(slug)s” created for review.") % {"slug": article.slug})
    if roles.is_admin(request.user):
        return redirect("kb-admin-edit", article.pk)
    return redirect("ticket-detail", ticket.pk)
