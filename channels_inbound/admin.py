from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from channels_inbound.models import Channel, InboundEvent
from channels_inbound.services import inbound_event_retry


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "key", "is_active", "default_team", "rejected_requests", "last_rejected_at")
    list_filter = ("kind", "is_active")
    readonly_fields = ("key", "rejected_requests", "last_rejected_at", "created_at")
    fields = ("name", "kind", "key", "is_active", "default_team", "settings", "rejected_requests", "last_rejected_at", "created_at")


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    """Failed and abandoned events are listed here with their error, and can be retried."""

    list_display = ("pk", "channel", "external_id", "status", "attempts", "received_at", "next_attempt_at", "short_error")
    list_filter = ("status", "channel")
    search_fields = ("external_id",)
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    actions = ["retry"]

    @admin.display(description=_("last error"))
    def short_error(self, obj) -> str:
        return obj.last_error[:120]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Process selected events again"))
    def retry(self, request, queryset):
        for event in queryset:
            inbound_event_retry(event=event)
