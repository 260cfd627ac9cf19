from django.contrib import admin

from tickets.models import Tag, Team, Ticket, TimelineEntry


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    filter_horizontal = ("members",)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("pk", "subject", "status", "priority", "team", "assignee", "customer", "last_message_at")
    list_filter = ("status", "priority", "team")
    search_fields = ("subject",)
    raw_id_fields = ("customer", "assignee", "follow_up_of", "origin_channel")


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    list_display = ("pk", "ticket", "kind", "direction", "channel", "delivery_status", "created_at")
    list_filter = ("kind", "direction", "delivery_status")
    raw_id_fields = ("ticket", "identity", "author_user", "author_customer", "inbound_event")


admin.site.register(Tag)
