from __future__ import annotations

from django.conf import settings

SESSION_LANGUAGE_KEY = "oc_language"


class UserLanguageMiddleware:
    """Hand the signed-in user's chosen language to LocaleMiddleware.

    The language is copied into the session at login and when the user changes it, so no request
    pays a user lookup for it. LocaleMiddleware reads the language cookie, which we fill in here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = request.session.get(SESSION_LANGUAGE_KEY)
        if language:
            request.COOKIES[settings.LANGUAGE_COOKIE_NAME] = language
        return self.get_response(request)
