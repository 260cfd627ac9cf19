"""`/webhooks/meta/<key>`: Meta's verification handshake (GET) and its webhook events (POST)."""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from channels_inbound import registry, selectors, services, webhooks
from channels_inbound.base import Rejected
from channels_inbound.meta.adapter import MESSAGING_FIELDS, event_id, route_channels

logger = logging.getLogger(__name__)
KINDS = ("messenger", "instagram")


_error = webhooks.error


@csrf_exempt
def webhook(request, key: str):
    if request.method not in ("GET", "POST"):
        return _error(405, _("Method not allowed."))
    channel = selectors.channel_for_webhook(key, kinds=KINDS)
    if channel is None:
        return _error(404, _("Unknown channel."))
    adapter = registry.adapter_for(channel.kind)
    if request.method == "GET":
        mode, token = request.GET.get("hub.mode", ""), request.GET.get("hub.verify_token", "")
        if not adapter.verify_handshake(channel, mode, token):
            services.channel_record_rejection(channel=channel, reason="wrong hub.verify_token")
            return _error(403, _("Wrong verify token."))
        return HttpResponse(request.GET.get("hub.challenge", "")[:200], content_type="text/plain")

    if (refused := webhooks.refuse_if_too_large(request)) is not None:
        return refused
    try:
        adapter.verify(request, channel)
    except Rejected as exc:
        services.channel_record_rejection(channel=channel, reason=exc.reason)
        return _error(403, _("Invalid signature."))
    payload, refused = webhooks.json_body(request)
    if refused is not None:
        return refused
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        return _error(400, _("Not a Meta webhook payload."))

    object_type = payload.get("object", "")
    entries = [e for e in payload["entry"] if isinstance(e, dict)]
    routes = route_channels(key_channel=channel, object_type=object_type, entry_ids={str(e.get("id", "")) for e in entries})
    stored = duplicates = 0
    for entry in entries:
        entry_id = str(entry.get("id", ""))
        target = routes.get(entry_id)
        items = [("messaging", i) for i in entry.get("messaging") or [] if isinstance(i, dict)]
        items += [
            (f"changes:{c.get('field')}", c["value"]) for c in entry.get("changes") or []
            if isinstance(c, dict) and c.get("field") in MESSAGING_FIELDS and isinstance(c.get("value"), dict)
        ]
        if target is None:
            if items:
                logger.warning("meta webhook on %s: no channel for %s %s of this app", key, object_type, entry_id)
            continue
        for source, item in items:
            external_id = event_id(item)
            if external_id is None:
                continue
            _event, created = services.inbound_event_store(
                channel=target, external_id=external_id,
                payload={"object": object_type, "entry_id": entry_id, "entry_time": entry.get("time"), "source": source, "item": item},
            )
            stored += created
            duplicates += not created
    return JsonResponse({"stored": stored, "duplicates": duplicates})
