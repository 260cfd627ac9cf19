from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsInboundConfig(AppConfig):
    name = "channels_inbound"
    verbose_name = _("Channels")

    def ready(self) -> None:
        from channels_inbound import registry

        registry.autodiscover()
        from channels_inbound.email import anymail_hooks

        anymail_hooks.connect()
        from channels_inbound.twilio import panels as twilio_panels

        twilio_panels.register()
