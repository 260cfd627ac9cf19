from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OmnicenterConfig(AppConfig):
    name = "omnicenter"
    verbose_name = _("Omnicenter")

    def ready(self) -> None:
        from omnicenter import checks, signals  # noqa: F401
