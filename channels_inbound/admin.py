from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from rest_framework.fields import empty

from channels_inbound import registry
from channels_inbound.models import Channel, InboundEvent
from channels_inbound.services import channel_create, channel_update, inbound_event_retry


class ChannelAdminForm(forms.ModelForm):
    """Validates settings with the kind's adapter; secret settings are moved to encrypted storage."""

    class Meta:
        model = Channel
        fields = ["name", "kind", "is_active", "default_team", "settings"]

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or (self.instance.kind if self.instance.pk else None)
        if self.instance.pk and kind != self.instance.kind:
            self.add_error("kind", _("The kind of a channel cannot change."))
            return data
        adapter = registry.adapter_for(kind) if kind else None
        if adapter is None:
            self.add_error("kind", _("Channels of this kind are not available yet."))
            return data
        raw = data.get("settings") or {}
        if not isinstance(raw, dict):
            self.add_error("settings", _("Settings must be a JSON object."))
            return data
        # Editing: stored secrets are not shown, so settings left out keep their stored values.
        serializer = adapter.settings_serializer(data=raw, partial=bool(self.instance.pk))
        if not serializer.is_valid():
            self.add_error("settings", str(dict(serializer.errors)))
        unknown = set(raw) - set(serializer.fields)
        if unknown:
            self.add_error("settings", _("Unknown settings: %(keys)s") % {"keys": ", ".join(sorted(unknown))})
        return data


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = ("name", "kind", "key", "is_active", "default_team", "rejected_requests", "last_rejected_at")
    list_filter = ("kind", "is_active")
    readonly_fields = ("key", "settings_reference", "webhook_urls", "rejected_requests", "last_rejected_at", "created_at")
    fields = ("name", "kind", "key", "is_active", "default_team", "settings", "settings_reference", "webhook_urls",
              "rejected_requests", "last_rejected_at", "created_at")

    actions = ["test_connection"]

    @admin.action(description=_("Test the connection"))
    def test_connection(self, request, queryset):
        for channel in queryset:
            self._report_connection(request, channel)

    def _report_connection(self, request, channel: Channel) -> None:
        from channels_inbound.services import channel_test_connection

        ok, message = channel_test_connection(channel=channel)
        self.message_user(request, f"{channel.name}: {message}", messages.SUCCESS if ok else messages.ERROR)

    def get_urls(self):
        from django.urls import path

        return [
            path("<int:object_id>/test-connection/", self.admin_site.admin_view(self.test_connection_view),
                 name="channels_inbound_channel_test_connection"),
            *super().get_urls(),
        ]

    def test_connection_view(self, request, object_id: int):
        """The "Test the connection" button on a channel's page (templates/admin/channels_inbound/
        channel/change_form.html): the same check as the list's action, then back to the page."""
        from django.core.exceptions import PermissionDenied
        from django.http import HttpResponseNotAllowed, HttpResponseRedirect
        from django.shortcuts import get_object_or_404
        from django.urls import reverse

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        channel = get_object_or_404(Channel, pk=object_id)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        self._report_connection(request, channel)
        return HttpResponseRedirect(reverse("admin:channels_inbound_channel_change", args=[channel.pk]))

    @admin.display(description=_("available settings"))
    def settings_reference(self, obj) -> str:
        """Every setting of the kind with its meaning and what is in effect (a default shows while
        the JSON above leaves it out), so that switches such as email_offline_replies are found."""
        from django.utils.html import format_html, format_html_join

        adapter = registry.adapter_for(obj.kind) if obj and obj.pk else None
        if adapter is None:
            return "—"
        stored = obj.settings or {}
        rows = []
        for name, field in adapter.settings_serializer().fields.items():
            if name in adapter.secret_fields:
                continue
            if name in stored:
                value = stored[name]
            elif field.default is not empty:
                value = field.default() if callable(field.default) else field.default
            else:
                value = ""
            rows.append((name, json.dumps(value, ensure_ascii=False) if value != "" else "—", field.help_text or ""))
        return format_html("<table><tbody>{}</tbody></table>",
                           format_html_join("", "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>", rows))

    @admin.display(description=_("webhook URLs"))
    def webhook_urls(self, obj) -> str:
        adapter = registry.adapter_for(obj.kind) if obj and obj.pk else None
        return ", ".join(f"{k}: {v}" for k, v in adapter.webhook_urls(obj).items()) if adapter else "—"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            channel_update(channel=obj, name=data["name"], settings_data=data.get("settings") or {},
                           is_active=data["is_active"], default_team=data.get("default_team"))
            return
        channel, generated = channel_create(kind=data["kind"], name=data["name"],
                                            settings_data=data.get("settings") or {},
                                            default_team=data.get("default_team"))
        if not data["is_active"]:
            channel_update(channel=channel, is_active=False)
        obj.__dict__.update({k: v for k, v in channel.__dict__.items() if k != "_state"})
        obj._state.adding = False
        for name, value in generated.items():
            messages.warning(request, _("The %(name)s of this channel, shown only now: %(value)s")
                             % {"name": name, "value": value})


RAW_MAIL_SHOWN = 64 * 1024


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    """Failed and abandoned events are listed here with their error, and can be retried."""

    list_display = ("pk", "channel", "external_id", "status", "attempts", "received_at", "next_attempt_at", "short_error")
    list_filter = ("status", "channel")
    search_fields = ("external_id",)
    readonly_fields = [*(f.name for f in InboundEvent._meta.fields), "raw_mail"]
    actions = ["retry"]

    @admin.display(description=_("last error"))
    def short_error(self, obj) -> str:
        return obj.last_error[:120]

    @admin.display(description=_("raw mail"))
    def raw_mail(self, obj) -> str:
        """An email event's mail as it arrived (the headers only for an oversized one), readable,
        so that an admin can see why a mail could not be parsed."""
        import base64
        import binascii

        from django.utils.html import format_html

        payload = obj.payload if isinstance(obj.payload, dict) else {}
        encoded = payload.get("raw_b64") or payload.get("headers_b64")
        if not encoded:
            return "—"
        try:
            raw = base64.b64decode(encoded)
        except (binascii.Error, ValueError, TypeError):
            return _("(not valid base64)")
        shown = raw[:RAW_MAIL_SHOWN].decode("utf-8", "replace")
        more = _(" … (%(size)s bytes in all)") % {"size": len(raw)} if len(raw) > RAW_MAIL_SHOWN else ""
        return format_html('<pre class="raw-mail" style="white-space:pre-wrap">{}{}</pre>', shown, more)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Process selected events again"))
    def retry(self, request, queryset):
        for event in queryset:
            inbound_event_retry(event=event)
