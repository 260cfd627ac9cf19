"""`POST /api/v1/channels/<key>/inbound`: the `api` channel's inbound endpoint."""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_inbound import registry, selectors, services, webhooks
from channels_inbound.api.adapter import inbound_payload_validate
from channels_inbound.base import Rejected

_error = webhooks.error


@csrf_exempt
@require_POST
def inbound(request, key: str):
    channel = selectors.channel_for_webhook(key, kinds=("api",))
    if channel is None:
        return _error(404, _("Unknown channel."))
    if (refused := webhooks.refuse_if_too_large(request)) is not None:
        return refused
    adapter = registry.adapter_for(channel.kind)
    try:
        adapter.verify(request, channel)
    except Rejected as exc:
        services.channel_record_rejection(channel=channel, reason=exc.reason)
        message = _("Authentication required.") if exc.status == 401 else _("Wrong channel secret.")
        response = _error(exc.status, message)
        if exc.status == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response
    payload, refused = webhooks.json_body(request)
    if refused is not None:
        return refused
    clean, errors = inbound_payload_validate(payload)
    if errors is not None:
        return _error(400, _("Invalid payload."), errors=errors)
    event, created = services.inbound_event_store(channel=channel, external_id=clean["id"], payload=clean)
    return JsonResponse({"event_id": event.pk, "duplicate": not created}, status=202 if created else 200)
