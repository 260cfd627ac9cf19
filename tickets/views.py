"""Agent pages under /app/. Plain, server-rendered; live updates re-fetch fragments (partials)."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Q, prefetch_related_objects
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_inbound.models import Channel
from customers.models import Customer, CustomerMerge, MergeSuggestion
from omnicenter import csp, roles
from omnicenter.errors import DomainError
from tickets import inbox, selectors, services
from tickets.email_display import entries_for_display
from tickets.forms import BulkForm, CannedResponseForm, ComposerForm, TicketUpdateForm
from tickets.models import AgentPresence, Attachment, CannedResponse, SavedView, Team, Ticket


def staff_required(view):
    """Signed-in agents, supervisors and admins only; others are sent to sign in or refused."""

    @login_required
    @csp.strict
    def wrapped(request, *args, **kwargs):
        if not roles.is_agent(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def admin_required(view):
    """Admins only (the catalog and knowledge-base editors): other staff get 403, everyone else is
    treated as by `staff_required`."""

    @staff_required
    def wrapped(request, *args, **kwargs):
        if not roles.is_admin(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@require_POST
@staff_required
def message_retry(request, ticket_id: int, entry_id: int):
    from channels_inbound.delivery import message_retry as retry

    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    entry = get_object_or_404(ticket.entries, pk=entry_id, direction="out")
    if retry(entry=entry):
        messages.success(request, _("The message is queued to be sent again."))
    else:
        messages.error(request, _("Only a failed message can be sent again."))
    return redirect("ticket-detail", ticket_id=ticket.pk)


@require_POST
@staff_required
def message_not_sent(request, ticket_id: int, entry_id: int):
    from channels_inbound.delivery import message_mark_not_sent

    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    entry = get_object_or_404(ticket.entries, pk=entry_id, direction="out", delivery_status="unknown")
    message_mark_not_sent(entry=entry, by=request.user)
    messages.success(request, _("Marked as not delivered; you can send it again."))
    return redirect("ticket-detail", ticket_id=ticket.pk)


@require_GET
@staff_required
def customer_detail(request, customer_id: int):
    customer = get_object_or_404(Customer.objects.select_related("organization").prefetch_related("identities"), pk=customer_id)
    context = {
        "customer": customer,
        **_customer_context(request, customer),
        "entries": entries_for_display(
            selectors.customer_timeline(request.user, customer).filter(kind__in=["message", "call", "note"])[:200],
            images_for=_images_for(request),
        ),
    }
    return render(request, "tickets/customer_detail.html", context)


@require_GET
@staff_required
def attachment_download(request, public_id):
    attachment = get_object_or_404(Attachment.objects.select_related("entry"), public_id=public_id)
    # The permission check is the ticket's: 404 when the agent may not see it.
    selectors.ticket_for_agent(request.user, attachment.entry.ticket_id)
    response = FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.filename,
                            content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response



def _images_for(request) -> int | None:
    """`?images=<entry id>`: the one message whose remote images the agent chose to load."""
    value = request.GET.get("images", "")
    return int(value) if value.isascii() and value.isdigit() else None


# --- the three-pane workspace -----------------------------------------------------------------------

def _is_fragment(request, name: str) -> bool:
    return request.GET.get("fragment") == name


def _list_state(request) -> dict:
    """The view and filters the list shows, from the query string (kept in every link)."""
    view = request.GET.get("view", inbox.DEFAULT_VIEW)
    if view not in inbox.VIEW_KEYS:
        view = inbox.DEFAULT_VIEW
    filters = {name: request.GET.get(name, "").strip()[:200] for name in inbox.FILTERS}
    return {"view": view, "filters": filters}


def _state_query(state: dict, **extra) -> str:
    params = {"view": state["view"], **{k: v for k, v in state["filters"].items() if v}, **extra}
    return urlencode(params)


def _page_number(request, name: str, default: int, cap: int) -> int:
    value = request.GET.get(name, "")
    return max(1, min(int(value), cap)) if value.isdigit() else default


def _list_context(request, state: dict, *, page: int = 1, pages: int = 1) -> dict:
    queryset = inbox.ticket_list(request.user, state["view"], state["filters"])
    rows, has_more = inbox.page_of(queryset, page, pages, user=request.user)
    last_page = page + pages - 1
    # /app/tickets/<n>/ built by concatenation: one reverse() per list, not three per row.
    tickets_url = reverse("ticket-detail", args=[0]).removesuffix("0/")
    now = timezone.now()
    return {
        "rows": inbox.label_rows(rows, tickets_url=tickets_url, now=now),
        # Translated once per list, not once per row.
        "no_subject": _("(no subject)"),
        "unassigned": _("Unassigned"),
        "has_more": has_more,
        "page": last_page,
        "next_url": f"{reverse('app-home')}?{_state_query(state, fragment='rows', page=last_page + 1)}",
        "state": state,
        "state_query": _state_query(state),
        "now": now,
        "tickets_url": tickets_url,
    }


def _views_context(request, state: dict) -> dict:
    counts = inbox.view_counts(request.user)
    return {
        "views": [(v, counts.get(v.key)) for v in inbox.VIEWS],
        "state": state,
        "unseen_mentions": inbox.unseen_mentions(request.user),
        "saved_views": list(SavedView.objects.filter(Q(owner__isnull=True) | Q(owner=request.user))),
        "current_query": _state_query(state),
    }


def _with_etag(request, response: HttpResponse) -> HttpResponse:
    """Fragments answer 304 when nothing changed: a live refresh that finds nothing new costs
    the client no transfer and no DOM swap (the browser revalidates with If-None-Match)."""
    etag = '"' + hashlib.sha256(response.content).hexdigest()[:32] + '"'
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Cookie, Accept-Language, HX-Request"
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        not_modified = HttpResponseNotModified()
        for header in ("ETag", "Cache-Control", "Vary"):
            not_modified[header] = response[header]
        return not_modified
    return response


def _filter_choices(request, all_teams: list[Team] | None = None) -> dict:
    """The list's filter and bulk choices. `all_teams`: every team, when the page has them already
    (the ticket pane's team select), so they are not read twice."""
    if all_teams is None:
        teams = Team.objects.order_by("name") if roles.is_supervisor(request.user) \
            else Team.objects.filter(pk__in=selectors.team_ids_of(request.user)).order_by("name")
    else:
        mine = set(selectors.team_ids_of(request.user))
        teams = all_teams if roles.is_supervisor(request.user) else [t for t in all_teams if t.pk in mine]
    return {
        "statuses": Ticket.Status.choices,
        "priorities": Ticket.Priority.choices,
        "teams": teams,
        "channel_kinds": Channel.Kind.choices,
        "agents": _agents() if roles.is_supervisor(request.user)
        else _agents().filter(teams__in=selectors.team_ids_of(request.user)).distinct(),
    }


def _assignees(request, ticket: Ticket) -> list:
    """Whom the assignee select offers: supervisors anyone; an agent themself (and whoever holds
    the ticket now), which is all the service lets them choose."""
    if roles.is_supervisor(request.user):
        return list(_agents())
    people = {request.user.pk: request.user}
    if ticket.assignee_id and ticket.assignee is not None:
        people[ticket.assignee_id] = ticket.assignee
    return list(people.values())


def _agents():
    return get_user_model().objects.filter(is_active=True, groups__name__in=[roles.AGENT, roles.SUPERVISOR, roles.ADMIN]).distinct().order_by("username")


@require_GET
@staff_required
def ticket_list(request):
    """`/app/`: views | list | (empty) conversation pane. Fragments: `views`, `list`, `rows`."""
    state = _list_state(request)
    if _is_fragment(request, "views"):
        return _with_etag(request, render(request, "tickets/workspace.html#views", _views_context(request, state)))
    if _is_fragment(request, "rows"):
        page = _page_number(request, "page", 1, 10_000)
        return render(request, "tickets/workspace.html#rows", _list_context(request, state, page=page))
    pages = _page_number(request, "pages", 1, inbox.MAX_PAGES)
    if _is_fragment(request, "list"):
        return _with_etag(request, render(request, "tickets/workspace.html#ticket-list", _list_context(request, state, pages=pages)))
    context = {**_list_context(request, state), **_views_context(request, state), **_filter_choices(request), "ticket": None}
    return render(request, "tickets/workspace.html", context)


WINDOWED_KINDS = ("whatsapp", "messenger", "instagram")


def _reply_targets(ticket: Ticket, timeline: list) -> tuple[list[dict], str]:
    """Every (channel, identity) pair a reply could go to, and the default (reply_target, found in
    the timeline the page shows)."""
    from channels_inbound import registry

    identities = [i for i in ticket.customer.identities.all() if i.verified]
    now = timezone.now()
    options = []
    for channel in Channel.objects.filter(is_active=True).order_by("kind", "name"):
        adapter = registry.adapter_for(channel.kind)
        kinds = adapter.identity_kinds if adapter else ()
        if adapter is None or not kinds:
            continue
        for identity in identities:
            if identity.kind in kinds:
                preference = next((p for p in identity.preferences.all() if p.channel_kind == channel.kind), None)
                window = None
                if channel.kind in WINDOWED_KINDS:
                    # Per-channel constraint: free-form replies only inside the customer-service window.
                    expires = preference.window_expires_at if preference else None
                    window = expires if expires and expires > now else "closed"
                options.append({
                    "value": f"{channel.pk}:{identity.pk}", "channel": channel, "identity": identity, "window": window,
                    "opted_out": bool(preference and preference.opted_out_at),
                })
    try:
        channel, identity = services.reply_target(ticket, timeline=timeline)
        default = f"{channel.pk}:{identity.pk}"
    except services.NoReplyChannel:
        default = ""
    return options, default


def _pane_context(request, ticket: Ticket, composer: ComposerForm | None = None, collision: bool = False) -> dict:
    services.ticket_mark_seen(ticket=ticket, user=request.user)
    entries = list(selectors.ticket_timeline(ticket))
    targets, default_target = _reply_targets(ticket, entries) if ticket.status != "closed" else ([], "")
    last_entry = max((e.pk for e in entries), default=0)
    if composer is None:
        composer = ComposerForm(initial={"target": default_target, "last_entry": last_entry})
    return {
        "ticket": ticket,
        "entries": entries_for_display(entries, images_for=_images_for(request)),
        "composer": composer,
        "targets": targets,
        "selected_target": composer["target"].value() or default_target,
        "last_entry": last_entry,
        "collision": collision,
        "statuses": Ticket.Status.choices,
        "priorities": Ticket.Priority.choices,
        "all_teams": list(Team.objects.order_by("name")),
        "assignees": _assignees(request, ticket),
        "can_supervise": roles.is_supervisor(request.user),
        "customer": ticket.customer,
        **_customer_context(request, ticket.customer, exclude_ticket=ticket),
    }


def _customer_context(request, customer: Customer, exclude_ticket: Ticket | None = None) -> dict:
    others = selectors.tickets_visible_to(request.user).filter(customer=customer).select_related("origin_channel")
    if exclude_ticket is not None:
        others = others.exclude(pk=exclude_ticket.pk)
    suggestions = (
        MergeSuggestion.objects.filter(Q(customer=customer) | Q(other=customer), status=MergeSuggestion.Status.OPEN)
        .filter(customer__merged_into__isnull=True, other__merged_into__isnull=True)
        .select_related("customer", "other")[:5]
    )
    return {
        "identities": sorted(customer.identities.all(), key=lambda i: (i.kind, i.value)),
        "previous_tickets": list(others.order_by("-last_message_at", "-pk")[:10]),
        "suggestions": [(s, s.other if s.customer_id == customer.pk else s.customer) for s in suggestions],
        "merges": list(CustomerMerge.objects.filter(into=customer, undone_at__isnull=True).select_related("other")[:5]),
        "attributes": sorted((customer.attributes or {}).items()),
    }


def _ticket_for_pane(request, ticket_id: int) -> Ticket:
    # The sidebar reads the customer's organization (joined to the ticket's query) and identities.
    ticket = selectors.ticket_for_agent(request.user, ticket_id, select=("customer__organization",))
    prefetch_related_objects([ticket.customer], "identities__preferences")
    return ticket


@require_GET
@staff_required
def ticket_detail(request, ticket_id: int):
    """The workspace with a ticket open. Fragments: `pane` (conversation + sidebar), `timeline`."""
    if _is_fragment(request, "timeline"):
        ticket = selectors.ticket_for_agent(request.user, ticket_id)
        # The timeline changes only with the ticket's version: answer 304 before any rendering.
        etag = f'"t{ticket.pk}-v{ticket.version}-{request.user.pk}-{get_language()}-{_images_for(request) or 0}"'
        if etag in request.headers.get("If-None-Match", ""):
            response = HttpResponseNotModified()
        else:
            services.ticket_mark_seen(ticket=ticket, user=request.user)
            entries = entries_for_display(selectors.ticket_timeline(ticket), images_for=_images_for(request))
            response = render(request, "tickets/_pane.html#timeline", {"ticket": ticket, "entries": entries})
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response
    ticket = _ticket_for_pane(request, ticket_id)
    if _is_fragment(request, "pane"):
        return render(request, "tickets/_pane.html", _pane_context(request, ticket))
    state = _list_state(request)
    # In this order, as before: the list and the counts are read before the pane marks the ticket seen.
    listing, views = _list_context(request, state), _views_context(request, state)
    pane = _pane_context(request, ticket)
    context = {**listing, **views, **_filter_choices(request, pane["all_teams"]), **pane}
    return render(request, "tickets/workspace.html", context)


def _pane_response(request, ticket: Ticket, **kwargs):
    """After a write: the pane (htmx) or a redirect to the ticket (plain form)."""
    if request.htmx:
        ticket = _ticket_for_pane(request, ticket.pk)
        return render(request, "tickets/_pane.html", _pane_context(request, ticket, **kwargs))
    return redirect("ticket-detail", ticket_id=ticket.pk)


def _new_activity_since(ticket: Ticket, last_entry: int | None, user) -> bool:
    """A customer message or someone else's reply or note landed after what the agent saw."""
    if last_entry is None:
        return False
    return ticket.entries.filter(pk__gt=last_entry, kind__in=["message", "note", "call"]).exclude(author_user=user).exists()


def _target_from(ticket: Ticket, value: str):
    """The (channel, identity) an agent picked, checked against the ticket's customer."""
    if not value:
        return None, None
    channel_id, _sep, identity_id = value.partition(":")
    if not (channel_id.isdigit() and identity_id.isdigit()):
        raise services.NoReplyChannel(_("Choose where the reply goes."))
    channel = Channel.objects.filter(pk=int(channel_id), is_active=True).first()
    identity = ticket.customer.identities.filter(pk=int(identity_id)).first()
    if channel is None or identity is None:
        raise services.NoReplyChannel(_("Choose where the reply goes."))
    return channel, identity


@require_POST
@staff_required
def ticket_reply(request, ticket_id: int):
    ticket = _ticket_for_pane(request, ticket_id)
    form = ComposerForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _pane_response(request, ticket)
    data = form.cleaned_data
    if not data["confirm"] and _new_activity_since(ticket, data["last_entry"], request.user):
        # Nothing is sent: the agent reviews what arrived, then sends again (the text is kept).
        bound = ComposerForm(initial={**data, "confirm": True, "attachment": None})
        messages.warning(request, _("Something new arrived on this ticket while you were writing. Read it, then send again."))
        if request.htmx:
            return render(request, "tickets/_pane.html", _pane_context(request, ticket, composer=bound, collision=True))
        state = _list_state(request)
        listing, views = _list_context(request, state), _views_context(request, state)
        pane = _pane_context(request, ticket, composer=bound, collision=True)
        context = {**listing, **views, **_filter_choices(request, pane["all_teams"]), **pane}
        return render(request, "tickets/workspace.html", context, status=409)
    try:
        if data["kind"] == "note":
            services.ticket_add_note(ticket=ticket, by=request.user, text=data["text"], attachments=form.attachments())
        else:
            channel, identity = _target_from(ticket, data["target"])
            services.ticket_reply(ticket=ticket, by=request.user, text=data["text"], channel=channel, identity=identity,
                                  attachments=form.attachments())
        if data["then_status"]:
            services.ticket_set_status(ticket=ticket, status=data["then_status"], by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    return _pane_response(request, ticket)


@require_POST
@staff_required
def ticket_update(request, ticket_id: int):
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    form = TicketUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the fields and try again."))
        return _pane_response(request, ticket)
    try:
        services.ticket_change(ticket=ticket, by=request.user, changes=form.cleaned_data)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Ticket updated."))
        if not selectors.tickets_visible_to(request.user).filter(pk=ticket_id).exists():
            return redirect("app-home")  # handed to a team the agent is not in
    return _pane_response(request, ticket)


@require_POST
@staff_required
def ticket_quick(request, ticket_id: int):
    """One-click actions of the pane and the keyboard: take (a), solve (e)."""
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    action = request.POST.get("action")
    try:
        if action == "take":
            services.ticket_assign(ticket=ticket, agent=request.user, by=request.user)
        elif action == "solve":
            services.ticket_set_status(ticket=ticket, status="solved", by=request.user)
        else:
            raise DomainError(_("Unknown action."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return _pane_response(request, ticket)


@require_POST
@staff_required
def tickets_bulk(request):
    """Bulk assign, status, priority, tag and team for the selected tickets the agent may see; merge
    goes on to its confirmation step (`tickets_bulk_merge`)."""
    form = BulkForm(request.POST)
    back = reverse("app-home") + "?" + request.POST.get("state", "")[:2000].lstrip("?")
    try:
        if not form.is_valid():
            raise forms.ValidationError(next(iter(form.errors.values()))[0])
        if form.cleaned_data["action"] == "merge":
            # Merging needs a second step (which ticket survives): the confirmation page.
            query = urlencode({"ids": ",".join(map(str, form.cleaned_data["ids"])), "state": request.POST.get("state", "")[:2000]})
            return redirect(reverse("tickets-bulk-merge") + "?" + query)
        changes = form.changes()
    except forms.ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(back)
    tickets = list(selectors.tickets_visible_to(request.user).filter(pk__in=form.cleaned_data["ids"]))
    if len(tickets) != len(set(form.cleaned_data["ids"])):
        raise Http404  # one of them is not the agent's to see: change nothing, disclose nothing
    try:
        count = services.tickets_bulk_change(tickets=tickets, by=request.user, changes=changes)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(count)s tickets updated.") % {"count": count})
    return redirect(back)


def _selected_ids(value: str) -> list[int]:
    ids = list(dict.fromkeys(int(v) for v in value.split(",")[:501] if v.strip().isdigit()))
    if not ids or len(ids) > 500:
        raise forms.ValidationError(_("Select between 1 and 500 tickets."))
    return ids


@require_http_methods(["GET", "POST"])
@staff_required
def tickets_bulk_merge(request):
    """Bulk merge from the list. GET: the confirmation step (which ticket survives; the oldest is
    preselected), as a dialog for the workspace's script (htmx request) or a page without it.
    POST: merge the others into the chosen one. Every selected ticket must be one the agent may
    see (else 404, nothing disclosed) and all of one customer (else a clear error); nothing changes
    unless every merge succeeds."""
    data = request.POST if request.method == "POST" else request.GET
    state = data.get("state", "")[:2000].lstrip("?")
    back = reverse("app-home") + ("?" + state if state else "")
    try:
        ids = _selected_ids(data.get("ids", ""))
    except forms.ValidationError as exc:
        return _merge_refused(request, exc.messages[0], back)
    tickets = list(
        selectors.tickets_visible_to(request.user).filter(pk__in=ids).select_related("customer").order_by("created_at", "pk")
    )
    if len(tickets) != len(ids):
        raise Http404  # one of them is not the agent's to see: change nothing, disclose nothing
    context = {"tickets": tickets, "ids": ",".join(map(str, ids)), "state": state, "back": back, "error": None,
               "customer": tickets[0].customer, "survivor": tickets[0]}
    try:
        services.tickets_check_mergeable(tickets)
        if request.method == "POST":
            into = next((t for t in tickets if str(t.pk) == data.get("into", "").lstrip("#")), None)
            if into is None:
                raise DomainError(_("Choose the ticket to keep."))
            into = services.tickets_merge(tickets=tickets, into=into, by=request.user)
    except DomainError as exc:
        if request.method == "POST" and not request.htmx:
            return _merge_refused(request, exc.message, back)
        context["error"] = exc.message
        template = "tickets/bulk_merge.html#dialog" if request.htmx else "tickets/bulk_merge.html"
        return render(request, template, context, status=400)
    if request.method == "GET":
        return render(request, "tickets/bulk_merge.html#dialog" if request.htmx else "tickets/bulk_merge.html", context)
    count = len(tickets) - 1
    message = ngettext("%(count)s ticket was merged into #%(number)s.", "%(count)s tickets were merged into #%(number)s.",
                       count) % {"count": count, "number": into.number}
    if request.htmx:
        return render(request, "tickets/bulk_merge.html#done", {"message": message, "into": into})
    messages.success(request, message)
    return redirect(back)


def _merge_refused(request, message: str, back: str) -> HttpResponse:
    if request.htmx:
        return render(request, "tickets/bulk_merge.html#dialog", {"error": message, "back": back}, status=400)
    messages.error(request, message)
    return redirect(back)


@require_POST
@staff_required
def ticket_merge(request, ticket_id: int):
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    other_id = request.POST.get("into", "").lstrip("#")
    try:
        into = selectors.ticket_for_agent(request.user, other_id)
    except Http404:
        messages.error(request, _("No ticket with that number that you can see."))
        return _pane_response(request, ticket)
    try:
        services.ticket_merge(source=ticket, into=into, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _pane_response(request, ticket)
    messages.success(request, _("Merged into #%(number)s.") % {"number": into.number})
    return _pane_response(request, into)


@require_POST
@staff_required
def message_split(request, ticket_id: int, entry_id: int):
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    entry = get_object_or_404(ticket.entries, pk=entry_id)
    try:
        new = services.ticket_split(entry=entry, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _pane_response(request, ticket)
    messages.success(request, _("The message is now ticket #%(number)s.") % {"number": new.number})
    return _pane_response(request, new)


# --- canned responses -------------------------------------------------------------------------------

def _canned_for(user):
    return CannedResponse.objects.filter(Q(owner__isnull=True) | Q(owner=user))


@require_GET
@staff_required
def canned_search(request):
    """The `/` picker: responses matching `q`, rendered for `ticket` (variables filled in)."""
    ticket = selectors.ticket_for_agent(request.user, request.GET.get("ticket", ""))
    term = request.GET.get("q", "").strip()[:100]
    found = _canned_for(request.user)
    if term:
        found = found.filter(Q(title__icontains=term) | Q(body__icontains=term))
    items = [(c, services.canned_render(c.body, ticket=ticket, agent=request.user)) for c in found[:10]]
    return render(request, "tickets/_canned_results.html", {"items": items})


@staff_required
def canned_manage(request):
    if request.method == "POST":
        form = CannedResponseForm(request.POST)
        if form.is_valid():
            try:
                services.canned_response_save(by=request.user, **form.cleaned_data)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Canned response saved."))
                return redirect("canned-manage")
    else:
        form = CannedResponseForm()
    return render(request, "tickets/canned.html", {"form": form, "canned": _canned_for(request.user).select_related("owner")})


@require_POST
@staff_required
def canned_delete(request, canned_id: int):
    canned = get_object_or_404(_canned_for(request.user), pk=canned_id)
    try:
        services.canned_response_delete(canned=canned, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("canned-manage")


# --- customer sidebar writes --------------------------------------------------------------------------

def _customer_for_agent(request, customer_id) -> Customer:
    """A customer the agent may act on: a supervisor, or an agent who sees one of their tickets."""
    customer = get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)
    if not roles.is_supervisor(request.user) and not selectors.tickets_visible_to(request.user).filter(customer=customer).exists():
        raise Http404
    return customer


def _back(request, default: str) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next", "")
    return target if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else default


@require_POST
@staff_required
def customer_attributes(request, customer_id: int):
    """Edit custom attributes: `key=value` lines; an empty value removes the key."""
    from customers.services import customer_update

    customer = _customer_for_agent(request, customer_id)
    attributes = dict(customer.attributes or {})
    for line in request.POST.get("attributes", "").splitlines()[:100]:
        key, sep, value = line.partition("=")
        key = key.strip()[:60]
        if not sep or not key:
            continue
        if value.strip():
            attributes[key] = value.strip()[:500]
        else:
            attributes.pop(key, None)
    customer_update(customer=customer, attributes=attributes)
    messages.success(request, _("Customer updated."))
    return redirect(_back(request, reverse("customer-detail", args=[customer.pk])))


@require_POST
@staff_required
def customer_merge(request, customer_id: int):
    from customers.services import customer_merge as merge

    customer = _customer_for_agent(request, customer_id)
    other = _customer_for_agent(request, request.POST.get("other", "0") if request.POST.get("other", "").isdigit() else 0)
    try:
        merge(into=customer, other=other, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(other)s was merged into %(name)s.") % {"other": other, "name": customer})
    return redirect(_back(request, reverse("customer-detail", args=[customer.pk])))


@require_POST
@staff_required
def customer_unmerge(request, merge_id: int):
    from customers.services import customer_unmerge as unmerge

    merge = get_object_or_404(CustomerMerge, pk=merge_id)
    _customer_for_agent(request, merge.into_id)
    try:
        unmerge(merge=merge, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The merge was undone."))
    return redirect(_back(request, reverse("customer-detail", args=[merge.into_id])))


# --- presence and the supervisor's queue board --------------------------------------------------------

@require_POST
@staff_required
def presence_update(request):
    """Set by hand from the top bar, or `auto=1` from the page's inactivity timer."""
    try:
        services.presence_set(user=request.user, status=request.POST.get("status", ""), manual=not request.POST.get("auto"))
    except DomainError as exc:
        return HttpResponse(exc.message, status=400)
    if request.htmx or request.POST.get("auto"):
        return HttpResponse(status=204)
    return redirect(_back(request, reverse("app-home")))


def presence_of(presence: AgentPresence | None, now) -> str:
    if presence is None or presence.last_seen_at is None:
        return "offline"
    if (now - presence.last_seen_at).total_seconds() > services.OFFLINE_AFTER_SECONDS:
        return "offline"
    return presence.status


@require_GET
@staff_required
def queue_board(request):
    """Per team: open, unassigned, longest waiting; agents with presence and load. Supervisors."""
    if not roles.is_supervisor(request.user):
        raise Http404
    now = timezone.now()
    open_ = Q(tickets__status__in=inbox.OPEN)
    teams = Team.objects.annotate(
        open_count=Count("tickets", filter=open_),
        unassigned_count=Count("tickets", filter=open_ & Q(tickets__assignee__isnull=True)),
        oldest=Min("tickets__last_message_at", filter=open_ & Q(tickets__assignee__isnull=True)),
    ).prefetch_related("members").order_by("name")
    agents = (
        _agents().select_related("presence")
        .annotate(load=Count("assigned_tickets", filter=Q(assigned_tickets__status__in=inbox.OPEN), distinct=True))
    )
    agent_rows = [(a, presence_of(getattr(a, "presence", None), now)) for a in agents]
    by_id = {a.pk: row for row in agent_rows for a in [row[0]]}
    team_rows = [(t, [by_id[m.pk] for m in t.members.all() if m.pk in by_id]) for t in teams]
    context = {"teams": team_rows, "agents": agent_rows, "now": now}
    template = "tickets/board.html#board" if _is_fragment(request, "board") else "tickets/board.html"
    response = render(request, template, context)
    return _with_etag(request, response) if _is_fragment(request, "board") else response


# --- saved views --------------------------------------------------------------------------------------

@require_POST
@staff_required
def saved_view_create(request):
    query = request.POST.get("query", "")[:2000]
    try:
        services.saved_view_save(by=request.user, name=request.POST.get("name", ""), folder=request.POST.get("folder", ""),
                                 query=query, shared=bool(request.POST.get("shared")))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("View saved."))
    return redirect(reverse("app-home") + "?" + query.lstrip("?"))


@require_POST
@staff_required
def saved_view_delete(request, saved_id: int):
    saved = get_object_or_404(SavedView.objects.filter(Q(owner__isnull=True) | Q(owner=request.user)), pk=saved_id)
    try:
        services.saved_view_delete(saved=saved, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    if request.htmx:
        # The button carries no form (a CSRF token would change the views fragment's ETag on
        # every render): htmx sends the token in a header, and the page reloads.
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return redirect("app-home")
