"""Twilio webhook URLs, exactly as documented (DESIGN.md), each accepting one trailing slash."""

from __future__ import annotations

from django.urls import path, re_path

from channels_inbound.twilio import api, views

webhook_urlpatterns = [
    re_path(r"^(?P<key>[\w-]+)/message/?$", views.message, name="twilio-message"),
    re_path(r"^(?P<key>[\w-]+)/status/?$", views.status, name="twilio-status"),
    re_path(r"^(?P<key>[\w-]+)/voice/?$", views.voice, name="twilio-voice"),
    re_path(r"^(?P<key>[\w-]+)/voice/(?P<hook>[a-z]+)/?$", views.voice, name="twilio-voice-hook"),
]

app_urlpatterns = [
    path("voice/token/", views.voice_token, name="twilio-voice-token"),
    path("tickets/<int:ticket_id>/whatsapp/template/", views.whatsapp_template_form, name="twilio-whatsapp-template-form"),
    path("tickets/<int:ticket_id>/callbacks/<int:callback_id>/done/", views.callback_done, name="twilio-callback-done"),
]

api_urlpatterns = [
    path("tickets/<int:ticket_id>/whatsapp/", api.WhatsAppWindowView.as_view(), name="twilio-whatsapp-window"),
    path("tickets/<int:ticket_id>/whatsapp/template/", api.WhatsAppTemplateView.as_view(), name="twilio-whatsapp-template"),
]
