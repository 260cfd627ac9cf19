from __future__ import annotations

from django.urls import path

from tickets import views

urlpatterns = [
    path("", views.ticket_list, name="app-home"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<int:ticket_id>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/update/", views.ticket_update, name="ticket-update"),
    path("tickets/<int:ticket_id>/messages/<int:entry_id>/retry/", views.message_retry, name="message-retry"),
    path("tickets/<int:ticket_id>/messages/<int:entry_id>/not-sent/", views.message_not_sent, name="message-not-sent"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer-detail"),
    path("attachments/<uuid:public_id>/", views.attachment_download, name="attachment-download"),
]
