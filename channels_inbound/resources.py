"""REST resource `/api/v1/channels/` (admins). Named `resources` because the `api/` folder is the
adapter of the `api` channel kind (STYLE.md rule 6)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from channels_inbound import registry, services
from channels_inbound.models import Channel
from omnicenter.models import ApiToken
from omnicenter.permissions import IsAdmin
from tickets.models import Team


class ChannelSerializer(serializers.ModelSerializer):
    settings = serializers.JSONField(required=False, default=dict)
    default_team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    webhook_urls = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = ["id", "key", "kind", "name", "settings", "is_active", "default_team", "webhook_urls",
                  "rejected_requests", "last_rejected_at", "created_at"]
        read_only_fields = ["id", "key", "webhook_urls", "rejected_requests", "last_rejected_at", "created_at"]

    def get_webhook_urls(self, obj) -> dict[str, str]:
        adapter = registry.adapter_for(obj.kind)
        return adapter.webhook_urls(obj) if adapter else {}

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError(_("The kind of a channel cannot change."))
        if registry.adapter_for(value) is None:
            raise serializers.ValidationError(
                _("Channels of kind “%(kind)s” are not available yet. Available: %(kinds)s")
                % {"kind": value, "kinds": ", ".join(registry.supported_kinds())}
            )
        return value

    def validate(self, attrs):
        kind = attrs.get("kind") or (self.instance.kind if self.instance else None)
        if "settings" in attrs and kind:
            adapter = registry.adapter_for(kind)
            settings_serializer = adapter.settings_serializer(data=attrs["settings"], partial=self.instance is not None)
            if not settings_serializer.is_valid():
                raise serializers.ValidationError({"settings": settings_serializer.errors})
            unknown = set(attrs["settings"]) - set(settings_serializer.fields)
            if unknown:
                raise serializers.ValidationError({"settings": {k: [_("Unknown setting.")] for k in sorted(unknown)}})
            attrs["settings"] = dict(settings_serializer.validated_data)
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        adapter = registry.adapter_for(instance.kind)
        # Stored secrets never leave the server; the settings hold only non-secret values.
        for key in adapter.secret_fields if adapter else ():
            data["settings"].pop(key, None)
        return data


class ChannelViewSet(viewsets.ModelViewSet):

    """Channels (admins). A secret the server generates is in the creation response, once."""

    token_scope = ApiToken.Scope.CHANNELS
    serializer_class = ChannelSerializer
    permission_classes = [IsAdmin]
    queryset = Channel.objects.order_by("name")
    lookup_field = "key"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel, generated = services.channel_create(
            kind=data["kind"], name=data["name"], settings_data=data.get("settings", {}),
            default_team=data.get("default_team"),
        )
        body = self.get_serializer(channel).data
        body["secrets"] = generated
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        channel = self.get_object()
        serializer = self.get_serializer(channel, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        merged_settings = {**channel.settings, **data["settings"]} if "settings" in data else None
        services.channel_update(
            channel=channel, name=data.get("name"), settings_data=merged_settings, is_active=data.get("is_active"),
            **({"default_team": data["default_team"]} if "default_team" in data else {}),
        )
        return Response(self.get_serializer(channel).data)

    @extend_schema(request=None, responses=inline_serializer("ConnectionTest", {"ok": serializers.BooleanField(), "message": serializers.CharField()}))
    @action(detail=True, methods=["post"])
    def test(self, request, key=None):
        """Try the channel's connection to its provider (the mailbox of an email channel)."""
        ok, message = services.channel_test_connection(channel=self.get_object())
        return Response({"ok": ok, "message": message})
