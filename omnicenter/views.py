"""Staff sign-in with throttling, sign-out, and the language preference."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from omnicenter import services
from omnicenter.middleware import SESSION_LANGUAGE_KEY


def _client_ip(request) -> str:
    """The client's address. Behind NUM_PROXIES reverse proxies, REMOTE_ADDR is the proxy's own, so
    take the entry the outermost trusted proxy appended to X-Forwarded-For (entries left of it are
    whatever the client claimed)."""
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if settings.NUM_PROXIES and forwarded:
        return forwarded[-min(settings.NUM_PROXIES, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def _throttle_keys(request) -> list[str]:
    username = (request.POST.get("username") or "").strip().lower()
    keys = ["login-ip:" + _client_ip(request)]
    if username:
        keys.append("login-user:" + hashlib.sha256(username.encode()).hexdigest())
    return keys


def _throttled(keys: list[str]) -> bool:
    counts = cache.get_many(keys)
    return any(count >= settings.LOGIN_THROTTLE_ATTEMPTS for count in counts.values())


def _record_failure(keys: list[str]) -> None:
    for key in keys:
        if cache.add(key, 1, settings.LOGIN_THROTTLE_WINDOW) is False:
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, settings.LOGIN_THROTTLE_WINDOW)


class LoginView(auth_views.LoginView):
    """Django's login, refusing further attempts for a while after repeated failures per IP and per
    username (without revealing whether the username exists)."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        keys = _throttle_keys(request)
        if _throttled(keys):
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            response = self.render_to_response(self.get_context_data(
                form=form, throttled=_("Too many failed sign-in attempts. Try again in a few minutes.")
            ))
            response.status_code = 429
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form was re-shown: a failed attempt
            _record_failure(keys)
        return response


@require_POST
def set_language(request):
    """Save the language on the signed-in user (and in the session), then go back."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        messages.error(request, _("Unknown language."))
        return redirect("app-home")
    if request.user.is_authenticated:
        services.user_set_language(user=request.user, language=language)
    request.session[SESSION_LANGUAGE_KEY] = language
    target = request.POST.get("next") or "/app/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = "/app/"
    response = HttpResponseRedirect(target)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


set_language = login_required(set_language)
