from __future__ import annotations

from django.urls import path

from channels_inbound.webchat.consumers import WidgetConsumer
from tickets.consumers import AgentConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi()),
]

# Cross-origin by design: the widget consumer checks the Origin against its channel's allow-list
# itself, so these routes stay outside AllowedHostsOriginValidator and the session middleware.
widget_websocket_urlpatterns = [
    path("ws/widget/<str:key>/", WidgetConsumer.as_asgi()),
]
