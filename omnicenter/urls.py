from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from channels_inbound.api import views as api_channel_views
from channels_inbound.resources import ChannelViewSet
from customers.api import CustomerViewSet
from omnicenter import csp, health, views
from omnicenter.api import UserViewSet
from tickets.api import TeamViewSet, TicketViewSet

router = DefaultRouter()
router.register("channels", ChannelViewSet, basename="channel")
router.register("customers", CustomerViewSet, basename="customer")
router.register("tickets", TicketViewSet, basename="ticket")
router.register("teams", TeamViewSet, basename="team")
router.register("users", UserViewSet, basename="user")

admin.site.site_header = "Omnicenter"

# ESP webhooks exist only with their shared secret: anymail would otherwise accept anyone's posts
# (it merely warns, and omnicenter/checks.py makes that warning an error).
anymail_urls = [path("anymail/", include("anymail.urls"))] if settings.ANYMAIL.get("WEBHOOK_SECRET") else []

urlpatterns = [
    path("", RedirectView.as_view(url="/app/", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/", health.healthz),
    # Webhook and inbound URLs are exactly as documented and also accept one trailing slash.
    re_path(r"^api/v1/channels/(?P<key>[\w-]+)/inbound/?$", api_channel_views.inbound, name="api-channel-inbound"),
    path("", include("channels_inbound.webchat.urls")),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("accounts/login/", csp.strict(views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", views.set_language, name="set-language"),
    path("app/", include("tickets.urls")),
    path("admin/", admin.site.urls),
    *anymail_urls,
]

