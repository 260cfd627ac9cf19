from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog")

    def ready(self) -> None:
        from catalog import views
        from tickets.panels import register_customer_panel, register_ticket_panel

        register_customer_panel("catalog/_owned_panel.html", context=views.owned_panel_context, order=30)
        register_ticket_panel("catalog/_search_panel.html", context=views.search_panel_context, order=40)
