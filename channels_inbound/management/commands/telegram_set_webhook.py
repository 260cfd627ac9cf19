"""`telegram_set_webhook --channel KEY`: register a Telegram channel's webhook with a fresh secret."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from channels_inbound.base import PermanentSendError, TransientSendError, UnknownOutcome
from channels_inbound.models import Channel


class Command(BaseCommand):
    help = "Register a Telegram channel's webhook (setWebhook) with a freshly generated secret token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--channel", required=True, help="the channel's key")

    def handle(self, *args, channel: str, **options) -> None:
        from channels_inbound.telegram.adapter import TelegramAdapter
        from channels_inbound.telegram.services import telegram_rotate_secret

        found = Channel.objects.filter(key=channel, kind="telegram").first()
        if found is None:
            raise CommandError(f"No Telegram channel with key {channel!r}.")
        try:
            me = telegram_rotate_secret(channel=found)
        except (TransientSendError, PermanentSendError, UnknownOutcome) as exc:
            raise CommandError(f"Telegram refused: {exc}") from None
        url = TelegramAdapter().webhook_urls(found)["webhook"]
        self.stdout.write(f"Webhook of @{me.get('username', '?')} registered at {url} with a new secret token.")
