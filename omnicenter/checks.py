from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def anymail_webhook_secret(app_configs, **kwargs):
    import warnings

    from anymail.exceptions import AnymailInsecureWebhookWarning

    # An unauthenticated ESP webhook is refused outright, never accepted with a warning.
    warnings.simplefilter("error", AnymailInsecureWebhookWarning)
    secret = settings.ANYMAIL.get("WEBHOOK_SECRET", "")
    if secret and ":" not in secret:
        return [Error("ANYMAIL_WEBHOOK_SECRET must be 'user:password' (HTTP basic auth for ESP webhooks).",
                      id="omnicenter.E002")]
    return []


@register()
def encryption_keys(app_configs, **kwargs):
    from cryptography.fernet import Fernet

    errors = []
    for index, key in enumerate(settings.FIELD_ENCRYPTION_KEYS):
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(Error(f"FIELD_ENCRYPTION_KEYS entry {index + 1} is not a Fernet key.", id="omnicenter.E001"))
    return errors
