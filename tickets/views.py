"""Agent pages under /app/. Plain, server-rendered; live updates re-fetch fragments (partials)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET, require_POST

from customers.models import Customer
from omnicenter import csp, roles
from omnicenter.errors import DomainError
from tickets import selectors, services
from tickets.api import _filter_tickets
from tickets.email_display import entries_for_display
from tickets.forms import ComposerForm, TicketUpdateForm
from tickets.models import Attachment

OPEN = "new,open,pending"
VIEWS = [
    ("open", pgettext_lazy("ticket list view", "Open"), {"status": OPEN}),
    ("mine", pgettext_lazy("ticket list view", "Mine"), {"status": OPEN, "assignee": "me"}),
    ("unassigned", pgettext_lazy("ticket list view", "Unassigned"), {"status": OPEN, "assignee": "none"}),
    ("solved", pgettext_lazy("ticket list view", "Solved"), {"status": "solved"}),
    ("all", pgettext_lazy("ticket list view", "All"), {}),
]


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


@require_GET
@staff_required
def ticket_list(request):
    view_key = request.GET.get("view", "open")
    view = next((v for v in VIEWS if v[0] == view_key), VIEWS[0])
    params = {**view[2], **({"q": request.GET["q"]} if request.GET.get("q") else {})}
    queryset = _filter_tickets(selectors.tickets_list(request.user), params, request.user)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    context = {"page": page, "views": VIEWS, "current_view": view[0], "q": request.GET.get("q", "")}
    template = "tickets/ticket_list.html"
    if request.GET.get("fragment") == "list":
        template += "#ticket-list"
    return render(request, template, context)


def _images_for(request) -> int | None:
    """`?images=<entry id>`: the one message whose remote images the agent chose to load."""
    value = request.GET.get("images", "")
    return int(value) if value.isascii() and value.isdigit() else None


@require_GET
@staff_required
def ticket_detail(request, ticket_id: int):
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    context = {
        "ticket": ticket,
        "entries": entries_for_display(selectors.ticket_timeline(ticket), images_for=_images_for(request)),
        "composer": ComposerForm(),
        "update_form": TicketUpdateForm(initial={
            "status": ticket.status, "priority": ticket.priority, "team": ticket.team_id, "assignee": ticket.assignee_id,
        }),
        "can_supervise": roles.is_supervisor(request.user),
    }
    template = "tickets/ticket_detail.html"
    if request.GET.get("fragment") == "timeline":
        template += "#timeline"
    return render(request, template, context)


@require_POST
@staff_required
def ticket_reply(request, ticket_id: int):
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    form = ComposerForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("ticket-detail", ticket_id=ticket.pk)
    try:
        if form.cleaned_data["kind"] == "note":
            services.ticket_add_note(ticket=ticket, by=request.user, text=form.cleaned_data["text"], attachments=form.attachments())
        else:
            services.ticket_reply(ticket=ticket, by=request.user, text=form.cleaned_data["text"], attachments=form.attachments())
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("ticket-detail", ticket_id=ticket.pk)


@require_POST
@staff_required
def ticket_update(request, ticket_id: int):
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    form = TicketUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the fields and try again."))
        return redirect("ticket-detail", ticket_id=ticket.pk)
    try:
        services.ticket_change(ticket=ticket, by=request.user, changes=form.cleaned_data)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Ticket updated."))
        if not selectors.tickets_visible_to(request.user).filter(pk=ticket_id).exists():
            return redirect("app-home")  # handed to a team the agent is not in
    return redirect("ticket-detail", ticket_id=ticket_id)


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
    customer = get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)
    context = {
        "customer": customer,
        "identities": customer.identities.order_by("kind", "value"),
        "tickets": selectors.tickets_visible_to(request.user).filter(customer=customer).select_related("team", "assignee").order_by("-last_message_at"),
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

