from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = _("Knowledge")

    def ready(self) -> None:
        from knowledge.views.agent import panel_context
        from tickets.panels import register_ticket_panel

        register_ticket_panel("knowledge/_ticket_panel.html", context=panel_context, order=20)
