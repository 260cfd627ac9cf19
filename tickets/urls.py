from __future__ import annotations

from django.urls import path

from tickets import views

urlpatterns = [
    path("", views.ticket_list, name="app-home"),
    path("bulk/", views.tickets_bulk, name="tickets-bulk"),
    path("bulk/merge/", views.tickets_bulk_merge, name="tickets-bulk-merge"),
    path("board/", views.queue_board, name="queue-board"),
    path("presence/", views.presence_update, name="presence-update"),
    path("saved-views/", views.saved_view_create, name="saved-view-create"),
    path("saved-views/<int:saved_id>/delete/", views.saved_view_delete, name="saved-view-delete"),
    path("canned/", views.canned_search, name="canned-search"),
    path("canned/manage/", views.canned_manage, name="canned-manage"),
    path("canned/<int:canned_id>/delete/", views.canned_delete, name="canned-delete"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<int:ticket_id>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/update/", views.ticket_update, name="ticket-update"),
    path("tickets/<int:ticket_id>/quick/", views.ticket_quick, name="ticket-quick"),
    path("tickets/<int:ticket_id>/merge/", views.ticket_merge, name="ticket-merge"),
    path("tickets/<int:ticket_id>/messages/<int:entry_id>/retry/", views.message_retry, name="message-retry"),
    path("tickets/<int:ticket_id>/messages/<int:entry_id>/not-sent/", views.message_not_sent, name="message-not-sent"),
    path("tickets/<int:ticket_id>/messages/<int:entry_id>/split/", views.message_split, name="message-split"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:customer_id>/attributes/", views.customer_attributes, name="customer-attributes"),
    path("customers/<int:customer_id>/merge/", views.customer_merge, name="customer-merge"),
    path("customer-merges/<int:merge_id>/undo/", views.customer_unmerge, name="customer-unmerge"),
    path("attachments/<uuid:public_id>/", views.attachment_download, name="attachment-download"),
]
