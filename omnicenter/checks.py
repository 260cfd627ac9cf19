from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


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
