"""`/webhooks/telegram/<key>`: updates from the Telegram Bot API."""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_inbound import registry, selectors, services, webhooks
from channels_inbound.base import Rejected

_error = webhooks.error


@csrf_exempt
@require_POST
def webhook(request, key: str):
    channel = selectors.channel_for_webhook(key, kinds=("telegram",))
    if channel is None:
        return _error(404, _("Unknown channel."))
    if (refused := webhooks.refuse_if_too_large(request)) is not None:
        return refused
    try:
        registry.adapter_for(channel.kind).verify(request, channel)
    except Rejected as exc:
        services.channel_record_rejection(channel=channel, reason=exc.reason)
        return _error(403, _("Wrong secret token."))
    update, refused = webhooks.json_body(request)
    if refused is not None:
        return refused
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int) or isinstance(update.get("update_id"), bool):
        return _error(400, _("Not a Telegram update: update_id is missing."))
    event, created = services.inbound_event_store(channel=channel, external_id=str(update["update_id"]), payload=update)
    return JsonResponse({"event_id": event.pk, "duplicate": not created})
