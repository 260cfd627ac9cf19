"""Telegram channel setup: registering the webhook with its secret token."""

from __future__ import annotations

import secrets

from channels_inbound import registry
from channels_inbound.models import Channel
from channels_inbound.telegram import botapi
from omnicenter import crypto


def telegram_register_webhook(*, channel: Channel) -> dict:
    """getMe, then setWebhook with the channel's webhook URL and secret token. Returns the bot
    (getMe's result). Raises TransientSendError, PermanentSendError or UnknownOutcome."""
    from channels_inbound.telegram.adapter import ALLOWED_UPDATES

    token = channel.secret("bot_token")
    if not token:
        from channels_inbound.base import PermanentSendError

        raise PermanentSendError("The channel has no bot token.")
    me = botapi.request(token, "getMe")
    botapi.request(token, "setWebhook", json={
        "url": registry.adapter_for(channel.kind).webhook_urls(channel)["webhook"],
        "secret_token": channel.secret("secret_token"),
        "allowed_updates": ALLOWED_UPDATES,
    })
    return me


def telegram_rotate_secret(*, channel: Channel) -> dict:
    """A fresh secret token, stored first (so updates signed with it are accepted at once), then
    registered with Telegram. Until setWebhook succeeds, Telegram keeps the old one and its
    deliveries are refused; Telegram retries them, so none is lost."""
    values = channel.secrets
    values["secret_token"] = secrets.token_urlsafe(32)
    channel.secrets_encrypted = crypto.encrypt_json(values)
    channel.save(update_fields=["secrets_encrypted"])
    return telegram_register_webhook(channel=channel)


def telegram_answer_callback(*, entry_id: int) -> bool:
    """answerCallbackQuery for a button press on the timeline, once (a late answer is refused by
    Telegram after some seconds and then simply dropped)."""
    from channels_inbound.base import PermanentSendError, UnknownOutcome
    from tickets.models import TimelineEntry

    entry = TimelineEntry.objects.select_related("channel").filter(pk=entry_id, channel__kind="telegram").first()
    if entry is None or not entry.data.get("callback_query_id") or entry.data.get("callback_answered"):
        return False
    try:
        botapi.request(entry.channel.secret("bot_token"), "answerCallbackQuery",
                       json={"callback_query_id": entry.data["callback_query_id"]})
    except (PermanentSendError, UnknownOutcome):
        return False
    TimelineEntry.objects.filter(pk=entry_id).update(data={**entry.data, "callback_answered": True})
    return True
