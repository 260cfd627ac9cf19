"""The customer portal under /portal/. A customer is not a Django user: the session holds the
customer's id under PORTAL_CUSTOMER_KEY (and the identity they signed in with), apart from staff
authentication. Every ticket is fetched through tickets.portal.selectors (404 for anyone else's)."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.identities import InvalidIdentity
from customers.models import Identity
from omnicenter import csp
from omnicenter.errors import DomainError
from omnicenter.middleware import SESSION_LANGUAGE_KEY
from tickets.models import CsatRating, SurveyInvitation
from tickets.portal import forms, links, selectors, services, surveys, throttle

PORTAL_CUSTOMER_KEY = "portal_customer"
PORTAL_IDENTITY_KEY = "portal_identity"
PENDING_CODE_KEY = "portal_code_address"
NEXT_KEY = "portal_next"


def portal_page(view):
    """Strict CSP, never cached (pages hold personal data or one-time links)."""
    return never_cache(csp.strict(view))


def customer_required(view):
    @portal_page
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        customer = selectors.portal_customer(request.session.get(PORTAL_CUSTOMER_KEY))
        if customer is None:
            request.session.pop(PORTAL_CUSTOMER_KEY, None)
            return redirect(f"{reverse('portal-signin')}?next={request.path}")
        request.portal_customer = customer
        identity_id = request.session.get(PORTAL_IDENTITY_KEY)
        request.portal_identity = Identity.objects.filter(pk=identity_id, customer=customer).first() if identity_id else None
        return view(request, *args, **kwargs)

    return wrapped


def _sign_in(request, token) -> None:
    """Rotate the session key (no fixation), then remember the customer. Staff sign-in in the
    same browser, if any, is left alone: the two never grant each other anything."""
    request.session.cycle_key()
    request.session[PORTAL_CUSTOMER_KEY] = token.customer_id
    request.session[PORTAL_IDENTITY_KEY] = token.identity_id
    request.session.pop(PENDING_CODE_KEY, None)
    if token.customer.language in dict(settings.LANGUAGES):
        request.session[SESSION_LANGUAGE_KEY] = token.customer.language


def _next(request, fallback: str = "/portal/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/portal/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


# --- sign-in ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@portal_page
def signin(request):
    form = forms.SigninForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            address = services.signin_address(form.cleaned_data["address"])
        except InvalidIdentity as exc:
            form.add_error("address", exc.message)
        else:
            if throttle.hit(request, address=f"{address.kind}:{address.value}"):
                return render(request, "portal/signin.html", {"form": form, "throttled": True}, status=429)
            services.portal_signin_request(address=address)
            # Where to go once signed in, if the link is opened in this same browser.
            request.session[NEXT_KEY] = _next(request, "")
            # The same answer whether or not the address is known.
            if address.kind == Identity.Kind.PHONE:
                request.session[PENDING_CODE_KEY] = address.value
                return redirect("portal-code")
            return render(request, "portal/signin_sent.html", {"address": address.value})
    return render(request, "portal/signin.html", {"form": form, "next": _next(request, "")})


@require_http_methods(["GET", "POST"])
@portal_page
def signin_code(request):
    phone = request.session.get(PENDING_CODE_KEY)
    if not phone:
        return redirect("portal-signin")
    form = forms.CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if throttle.hit(request, ip_only=True):
            return render(request, "portal/signin_code.html", {"form": form, "phone": phone, "throttled": True}, status=429)
        address = services.SigninAddress(Identity.Kind.PHONE, phone)
        token = services.portal_signin_with_code(address=address, code=form.cleaned_data["code"])
        if token is not None:
            _sign_in(request, token)
            return redirect(_after_sign_in(request))
        form.add_error("code", _("That code is wrong or no longer valid. Ask for a new one if needed."))
    return render(request, "portal/signin_code.html", {"form": form, "phone": phone})


@require_http_methods(["GET", "POST"])
@portal_page
def signin_link(request, secret: str):
    """GET only shows a button (mail scanners open links); the POST uses the link up."""
    if request.method == "GET":
        return render(request, "portal/signin_link.html", {"valid": services.signin_link_is_valid(secret)})
    token = services.portal_signin_with_link(secret=secret)
    if token is None or selectors.portal_customer(token.customer_id) is None:
        return render(request, "portal/signin_link.html", {"valid": False}, status=400)
    _sign_in(request, token)
    return redirect(_after_sign_in(request))


def _after_sign_in(request) -> str:
    target = request.session.pop(NEXT_KEY, "") or ""
    return target if target.startswith("/portal/") and not target.startswith("//") else reverse("portal-home")


@require_POST
@portal_page
def signout(request):
    request.session.pop(PORTAL_CUSTOMER_KEY, None)
    request.session.pop(PORTAL_IDENTITY_KEY, None)
    request.session.cycle_key()
    messages.success(request, _("You are signed out."))
    return redirect("portal-signin")


@require_POST
@portal_page
def set_language(request):
    """Switch the portal's language; remembered on the customer's profile when signed in."""
    from customers.services import customer_update

    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return redirect(_next(request))
    request.session[SESSION_LANGUAGE_KEY] = language
    customer = selectors.portal_customer(request.session.get(PORTAL_CUSTOMER_KEY))
    if customer is not None and customer.language != language:
        customer_update(customer=customer, language=language)
    response = HttpResponseRedirect(_next(request))
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


# --- the signed-in customer ---------------------------------------------------------------------


@require_GET
@customer_required
def home(request):
    customer = request.portal_customer
    tickets = list(selectors.customer_tickets(customer))
    for ticket in tickets:
        ticket.plain_status = selectors.plain_status(ticket)
    return render(request, "portal/home.html", {
        "customer": customer, "tickets": tickets, "products": selectors.products_owned(customer),
    })


def _ticket_context(request, ticket, rating=None, **extra) -> dict:
    rating = rating or CsatRating.objects.filter(ticket=ticket).first()
    return {
        "ticket": ticket,
        "plain_status": selectors.plain_status(ticket),
        "entries": selectors.public_timeline(ticket),
        "can_reopen": services.can_reopen(ticket),
        "rating": rating,
        "can_rate": ticket.status in ("solved", "closed") and surveys.csat_can_change(rating),
        **extra,
    }


@require_GET
@customer_required
def ticket_detail(request, number: int):
    ticket = selectors.ticket_for_customer(request.portal_customer, number)
    rating = CsatRating.objects.filter(ticket=ticket).first()
    return render(request, "portal/ticket.html", _ticket_context(
        request, ticket, rating=rating, reply_form=forms.ReplyForm(), callback_form=forms.CallbackForm(),
        rate_form=forms.RateForm(initial={"score": rating.score, "comment": rating.comment} if rating else None),
        signed_in=True,
    ))


def _errors_to_messages(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


@require_POST
@customer_required
def ticket_reply(request, number: int):
    ticket = selectors.ticket_for_customer(request.portal_customer, number)
    form = forms.ReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        _errors_to_messages(request, form)
        return redirect("portal-ticket", number=ticket.number)
    try:
        services.ticket_portal_reply(ticket=ticket, customer=request.portal_customer, identity=request.portal_identity,
                                     text=form.cleaned_data["text"], attachments=form.attachments())
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your message was added."))
    return redirect("portal-ticket", number=ticket.number)


def _ticket_action(request, ticket, success: str, action, *, form=None):
    """One customer action on a ticket: invalid form fields and refusals become messages, success
    says so; back to the ticket either way."""
    if form is not None and not form.is_valid():
        _errors_to_messages(request, form)
    else:
        try:
            action()
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, success)
    return redirect("portal-ticket", number=ticket.number)


@require_POST
@customer_required
def ticket_reopen(request, number: int):
    ticket = selectors.ticket_for_customer(request.portal_customer, number)
    return _ticket_action(request, ticket, _("We reopened your request."),
                          lambda: services.ticket_portal_reopen(ticket=ticket, customer=request.portal_customer))


@require_POST
@customer_required
def ticket_callback(request, number: int):
    ticket = selectors.ticket_for_customer(request.portal_customer, number)
    form = forms.CallbackForm(request.POST)
    return _ticket_action(request, ticket, _("Thank you. We will call you back."), lambda: services.callback_request_create(
        ticket=ticket, customer=request.portal_customer, **form.cleaned_data), form=form)


@require_POST
@customer_required
def ticket_rate(request, number: int):
    ticket = selectors.ticket_for_customer(request.portal_customer, number)
    form = forms.RateForm(request.POST)
    return _ticket_action(request, ticket, _("Thank you for your rating."), lambda: surveys.csat_rate(
        ticket=ticket, customer=request.portal_customer, **form.cleaned_data), form=form)


@require_http_methods(["GET", "POST"])
@customer_required
def new_request(request):
    form = forms.NewRequestForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_portal_open(
                customer=request.portal_customer, identity=request.portal_identity, subject=form.cleaned_data["subject"],
                text=form.cleaned_data["text"], attachments=form.attachments(),
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("We received your request #%(number)s.") % {"number": ticket.number})
            return redirect("portal-ticket", number=ticket.number)
    return render(request, "portal/new.html", {"form": form})


@require_GET
@customer_required
def suggest(request):
    text = request.GET.get("text", "")[:300]
    articles = selectors.article_suggestions(text, get_language() or "en")
    return render(request, "portal/_suggestions.html", {"articles": articles, "query": text})


@require_POST
@customer_required
def deflected(request):
    try:
        services.deflection_record(customer=request.portal_customer, article_ref=request.POST.get("article", ""),
                                   query=request.POST.get("query", ""), language=get_language() or "")
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("portal-new")
    messages.success(request, _("Glad that helped. You can always open a request if you need more."))
    return redirect("portal-home")


def _download(attachment):
    response = FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.filename,
                            content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@customer_required
def attachment_download(request, public_id):
    """Checked on every request: the attachment's message is public and on one of the signed-in
    customer's tickets right now."""
    ticket_ids = selectors.customer_tickets(request.portal_customer).values("pk")
    return _download(selectors.public_attachment(public_id, ticket_ids))


# --- signed links (no sign-in) ------------------------------------------------------------------


def _status_ticket(token: str):
    try:
        public_id, customer_id = links.load_status(token)
    except links.BadLink as exc:
        raise Http404 from exc
    return selectors.ticket_by_link(public_id, customer_id)


@require_GET
@portal_page
def status(request, token: str):
    ticket = _status_ticket(token)
    return render(request, "portal/status.html", _ticket_context(request, ticket, status_token=token, signed_in=False))


@require_GET
@portal_page
def status_attachment(request, token: str, public_id):
    ticket = _status_ticket(token)
    return _download(selectors.public_attachment(public_id, [ticket.pk]))


@require_http_methods(["GET", "POST"])
@portal_page
def csat_link(request, token: str):
    """One-click rating from a survey link: GET shows the choice pre-selected, POST records it."""
    try:
        public_id, customer_id = links.load_csat(token)
    except links.BadLink as exc:
        raise Http404 from exc
    ticket = selectors.ticket_by_link(public_id, customer_id)
    customer = ticket.customer
    rating = CsatRating.objects.filter(ticket=ticket).first()
    initial = {"score": request.GET.get("score")} if request.GET.get("score") else (
        {"score": rating.score, "comment": rating.comment} if rating else None)
    form = forms.RateForm(request.POST or None, initial=initial)
    done = False
    if request.method == "POST" and form.is_valid():
        try:
            rating = surveys.csat_rate(ticket=ticket, customer=customer, **form.cleaned_data)
            done = True
        except DomainError as exc:
            form.add_error(None, exc.message)
    return render(request, "portal/rate_link.html", {
        "ticket": ticket, "form": form, "done": done, "rating": rating,
        "can_change": surveys.csat_can_change(rating) and ticket.status in ("solved", "closed"),
    }, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@portal_page
def nps_link(request, token: str):
    try:
        invitation_id, customer_id = links.load_nps(token)
    except links.BadLink as exc:
        raise Http404 from exc
    customer = selectors.portal_customer(customer_id)
    invitation = SurveyInvitation.objects.filter(pk=invitation_id, kind=SurveyInvitation.Kind.NPS).first()
    if customer is None or invitation is None or selectors.portal_customer(invitation.customer_id) != customer:
        raise Http404
    form = forms.NpsForm(request.POST or None)
    done = False
    if request.method == "POST" and form.is_valid():
        try:
            surveys.nps_answer(invitation=invitation, customer=invitation.customer, **form.cleaned_data)
            done = True
        except DomainError as exc:
            form.add_error(None, exc.message)
    return render(request, "portal/nps_link.html", {"form": form, "done": done})
