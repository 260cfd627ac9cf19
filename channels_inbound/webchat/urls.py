"""The web chat's HTTP routes (included from omnicenter/urls.py)."""

from __future__ import annotations

from django.urls import path, re_path

from channels_inbound.webchat import views

urlpatterns = [
    re_path(r"^widget/(?P<key>[\w-]+)\.js$", views.script, name="webchat-script"),
    re_path(r"^widget/(?P<key>[\w-]+)/session/?$", views.session, name="webchat-session"),
    re_path(r"^widget/(?P<key>[\w-]+)/poll/?$", views.poll, name="webchat-poll"),
    re_path(r"^widget/(?P<key>[\w-]+)/send/?$", views.send, name="webchat-send"),
    path("widget/files/<str:token>", views.file, name="webchat-file"),
    path("app/webchat/tickets/<int:ticket_id>/typing/", views.agent_typing, name="webchat-agent-typing"),
]
