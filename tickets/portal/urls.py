from __future__ import annotations

from django.urls import path

from tickets.portal import views

urlpatterns = [
    path("", views.home, name="portal-home"),
    path("sign-in/", views.signin, name="portal-signin"),
    path("sign-in/code/", views.signin_code, name="portal-code"),
    path("sign-in/link/<str:secret>/", views.signin_link, name="portal-link"),
    path("sign-out/", views.signout, name="portal-signout"),
    path("language/", views.set_language, name="portal-language"),
    path("new/", views.new_request, name="portal-new"),
    path("new/suggestions/", views.suggest, name="portal-suggest"),
    path("new/deflected/", views.deflected, name="portal-deflected"),
    path("tickets/<int:number>/", views.ticket_detail, name="portal-ticket"),
    path("tickets/<int:number>/reply/", views.ticket_reply, name="portal-reply"),
    path("tickets/<int:number>/reopen/", views.ticket_reopen, name="portal-reopen"),
    path("tickets/<int:number>/callback/", views.ticket_callback, name="portal-callback"),
    path("tickets/<int:number>/rate/", views.ticket_rate, name="portal-rate"),
    path("attachments/<uuid:public_id>/", views.attachment_download, name="portal-attachment"),
    path("status/<str:token>/", views.status, name="portal-status"),
    path("status/<str:token>/attachments/<uuid:public_id>/", views.status_attachment, name="portal-status-attachment"),
    path("rate/<str:token>/", views.csat_link, name="portal-csat-link"),
    path("nps/<str:token>/", views.nps_link, name="portal-nps-link"),
]
