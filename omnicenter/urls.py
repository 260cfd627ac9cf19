from __future__ import annotations

from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView, AmazonSESTrackingWebhookView
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from catalog.api import ProductViewSet, ValidateViewSet
from channels_inbound.api import views as api_channel_views
from channels_inbound.email.sns import sns_verified
from channels_inbound.meta import views as meta_views
from channels_inbound.resources import ChannelViewSet
from channels_inbound.telegram import views as telegram_views
from channels_inbound.twilio import urls as twilio_urls
from customers.api import CustomerViewSet
from knowledge import urls as knowledge_urls
from knowledge.api import ArticleViewSet
from omnicenter import csp, health, views
from omnicenter.api import Router, SchemaDocsView, SchemaView, UserViewSet
from tickets.api import TeamViewSet, TicketViewSet

router = Router()
router.register("channels", ChannelViewSet, basename="channel")
router.register("customers", CustomerViewSet, basename="customer")
router.register("tickets", TicketViewSet, basename="ticket")
router.register("teams", TeamViewSet, basename="team")
router.register("users", UserViewSet, basename="user")
router.register("kb/articles", ArticleViewSet, basename="kb-article")
router.register("catalog/products", ProductViewSet, basename="catalog-product")
router.register("catalog/validate", ValidateViewSet, basename="catalog-validate")

admin.site.site_header = "Omnicenter"

# ESP webhooks exist only with their shared secret: anymail would otherwise accept anyone's posts
# (it merely warns, and omnicenter/checks.py makes that warning an error).
# Amazon SES (through SNS) gets SNS's own signature checked first (channels_inbound/email/sns.py).
anymail_urls = [
    path("anymail/amazon_ses/inbound/", sns_verified(AmazonSESInboundWebhookView.as_view())),
    path("anymail/amazon_ses/tracking/", sns_verified(AmazonSESTrackingWebhookView.as_view())),
    path("anymail/", include("anymail.urls")),
] if settings.ANYMAIL.get("WEBHOOK_SECRET") else []

urlpatterns = [
    path("", RedirectView.as_view(url="/app/", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/", health.healthz),
    # Webhook and inbound URLs are exactly as documented and also accept one trailing slash.
    re_path(r"^api/v1/channels/(?P<key>[\w-]+)/inbound/?$", api_channel_views.inbound, name="api-channel-inbound"),
    re_path(r"^webhooks/meta/(?P<key>[\w-]+)/?$", meta_views.webhook, name="meta-webhook"),
    re_path(r"^webhooks/telegram/(?P<key>[\w-]+)/?$", telegram_views.webhook, name="telegram-webhook"),
    path("webhooks/twilio/", include(twilio_urls.webhook_urlpatterns)),
    path("api/v1/", include(twilio_urls.api_urlpatterns)),
    path("", include("channels_inbound.webchat.urls")),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SchemaDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("accounts/login/", csp.strict(views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", views.set_language, name="set-language"),
    path("app/admin/kb/", include(knowledge_urls.admin_urlpatterns)),
    path("app/kb/", include(knowledge_urls.agent_urlpatterns)),
    path("app/", include(twilio_urls.app_urlpatterns)),
    path("app/", include("tickets.urls")),
    path("help/", include(knowledge_urls.help_urlpatterns)),
    path("app/", include("catalog.urls")),
    path("portal/", include("tickets.portal.urls")),
    path("admin/", admin.site.urls),
    *anymail_urls,
]

