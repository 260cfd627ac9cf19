from __future__ import annotations

import base64

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from channels_inbound.base import InboundAttachment
from channels_inbound.models import Channel
from customers.models import Identity
from omnicenter.errors import Conflict
from omnicenter.models import ApiToken
from omnicenter.permissions import AdminWritesStaffReads
from tickets import selectors, services
from tickets.models import Attachment, Team, Ticket, TimelineEntry

User = get_user_model()


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "filename", "content_type", "size", "url"]

    def get_url(self, obj) -> str:
        return reverse("attachment-download", args=[obj.public_id])


class ChannelRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = ["key", "kind", "name"]


class TimelineEntrySerializer(serializers.ModelSerializer):
    channel = ChannelRefSerializer(read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)
    author = serializers.SerializerMethodField()
    identity = serializers.SerializerMethodField()

    class Meta:
        model = TimelineEntry
        fields = [
            "id", "public_id", "ticket", "kind", "direction", "channel", "identity", "author", "text", "html",
            "provider_message_id", "delivery_status", "delivery_error", "is_auto_reply", "data", "attachments",
            "created_at", "sent_at", "delivered_at", "read_at",
        ]

    def get_author(self, obj) -> dict | None:
        if obj.author_user_id:
            return {"type": "user", "id": obj.author_user_id, "name": obj.author_user.display_name}
        if obj.author_customer_id:
            return {"type": "customer", "id": obj.author_customer_id, "name": obj.author_customer.display_name}
        return None

    def get_identity(self, obj) -> dict | None:
        if obj.identity_id:
            return {"id": obj.identity_id, "kind": obj.identity.kind, "value": obj.identity.value, "verified": obj.identity.verified}
        return None


class TicketSerializer(serializers.ModelSerializer):
    number = serializers.IntegerField(read_only=True)
    customer = serializers.SerializerMethodField()
    origin_channel = ChannelRefSerializer(read_only=True)
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Ticket
        fields = [
            "id", "number", "subject", "status", "priority", "team", "assignee", "customer", "origin_channel",
            "tags", "follow_up_of", "created_at", "updated_at", "last_message_at", "first_response_at", "solved_at",
            "closed_at", "version",
        ]
        read_only_fields = fields

    def get_customer(self, obj) -> dict:
        return {"id": obj.customer_id, "display_name": obj.customer.display_name}


class TicketUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), allow_null=True, required=False)
    assignee = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), allow_null=True, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)


class AttachmentInSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    content_type = serializers.CharField(max_length=100, required=False, allow_blank=True)
    data_base64 = serializers.CharField()

    def validate_data_base64(self, value: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise serializers.ValidationError(_("Not valid base64.")) from exc


class MessageCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[("reply", _("Reply")), ("note", _("Internal note"))])
    text = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    html = serializers.CharField(required=False, allow_blank=True, max_length=500_000)
    channel = serializers.SlugRelatedField(
        slug_field="key", queryset=Channel.objects.filter(is_active=True), required=False, allow_null=True,
        help_text=_("Channel key to reply on; default: where the customer last wrote from."),
    )
    identity = serializers.PrimaryKeyRelatedField(queryset=Identity.objects.all(), required=False, allow_null=True)
    attachments = AttachmentInSerializer(many=True, required=False, max_length=10)

    def validate(self, attrs):
        if not (attrs.get("text") or attrs.get("html")):
            raise serializers.ValidationError({"text": [_("A message needs text.")]})
        if attrs["kind"] == "note" and (attrs.get("channel") or attrs.get("identity")):
            raise serializers.ValidationError({"channel": [_("Internal notes are not sent anywhere.")]})
        return attrs


def _filter_tickets(queryset, params, user):
    if params.get("status"):
        queryset = queryset.filter(status__in=params["status"].split(","))
    if params.get("priority"):
        queryset = queryset.filter(priority__in=params["priority"].split(","))
    if params.get("team"):
        queryset = queryset.filter(team_id__in=[t for t in params["team"].split(",") if t.isdigit()])
    assignee = params.get("assignee")
    if assignee == "none":
        queryset = queryset.filter(assignee__isnull=True)
    elif assignee == "me":
        queryset = queryset.filter(assignee=user)
    elif assignee and assignee.isdigit():
        queryset = queryset.filter(assignee_id=assignee)
    if params.get("customer", "").isdigit():
        queryset = queryset.filter(customer_id=params["customer"])
    if params.get("channel"):
        queryset = queryset.filter(
            Exists(TimelineEntry.objects.filter(ticket=OuterRef("pk"), channel__key=params["channel"]))
        )
    term = params.get("q", "").strip()
    if term:
        match = Q(subject__icontains=term) | Exists(
            TimelineEntry.objects.filter(ticket=OuterRef("pk"), text__icontains=term).exclude(kind=TimelineEntry.Kind.EVENT)
        )
        if term.lstrip("#").isdigit():
            match |= Q(pk=int(term.lstrip("#")))
        queryset = queryset.filter(match)
    return queryset


TICKET_FILTERS = [
    OpenApiParameter("status", str, description="comma-separated: new,open,pending,solved,closed"),
    OpenApiParameter("priority", str, description="comma-separated: low,normal,high,urgent"),
    OpenApiParameter("team", str, description="team id(s)"),
    OpenApiParameter("assignee", str, description="user id, `me` or `none`"),
    OpenApiParameter("customer", int),
    OpenApiParameter("channel", str, description="channel key: tickets with a message on it"),
    OpenApiParameter("q", str, description="text in the subject or the messages, or a ticket number"),
]


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tickets you may see. PATCH changes status, priority, team, assignee and tags."""

    token_scope = ApiToken.Scope.TICKETS
    serializer_class = TicketSerializer

    def get_queryset(self):
        return _filter_tickets(selectors.tickets_list(self.request.user), self.request.query_params, self.request.user)

    def get_object(self):
        return selectors.ticket_for_agent(self.request.user, self.kwargs["pk"])

    @extend_schema(parameters=TICKET_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=TicketUpdateSerializer, responses=TicketSerializer)
    def partial_update(self, request, pk=None):
        ticket = self.get_object()
        update = TicketUpdateSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        ticket = services.ticket_change(ticket=ticket, by=request.user, changes=dict(update.validated_data))
        # The change may have taken the ticket out of the caller's sight (they let it go to
        # another team): answer with what was saved rather than a 404 for a committed change.
        saved = Ticket.objects.select_related("customer", "origin_channel").prefetch_related("tags").get(pk=ticket.pk)
        return Response(TicketSerializer(saved).data)

    @extend_schema(methods=["get"], responses=TimelineEntrySerializer(many=True))
    @extend_schema(methods=["post"], request=MessageCreateSerializer, responses={201: TimelineEntrySerializer})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        """The ticket's timeline; POST a reply (sent on a channel) or an internal note."""
        ticket = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.ticket_timeline(ticket))
            return self.get_paginated_response(TimelineEntrySerializer(page, many=True).data)
        body = MessageCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        attachments = [
            InboundAttachment(filename=a["filename"], content_type=a.get("content_type", ""), data=a["data_base64"])
            for a in data.get("attachments", [])
        ]
        if data["kind"] == "note":
            entry = services.ticket_add_note(ticket=ticket, by=request.user, text=data.get("text", ""), attachments=attachments)
        else:
            entry = services.ticket_reply(
                ticket=ticket, by=request.user, text=data.get("text", ""), html=data.get("html", ""),
                channel=data.get("channel"), identity=data.get("identity"), attachments=attachments,
            )
        entry = selectors.ticket_timeline(ticket).get(pk=entry.pk)
        return Response(TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


    @extend_schema(request=None, responses={200: TimelineEntrySerializer})
    @action(detail=True, methods=["post"], url_path=r"messages/(?P<entry_id>\d+)/retry")
    def retry_message(self, request, pk=None, entry_id=None):
        """Send a failed reply again. A reply whose outcome is unknown is not re-sent (409)."""
        from channels_inbound.delivery import message_retry

        ticket = self.get_object()
        entry = get_object_or_404(
            TimelineEntry, pk=entry_id, ticket=ticket, direction=TimelineEntry.Direction.OUTBOUND
        )
        if not message_retry(entry=entry):
            raise Conflict(_("Only a failed message can be sent again."))
        return Response(TimelineEntrySerializer(selectors.ticket_timeline(ticket).get(pk=entry.pk)).data)


    @extend_schema(request=None, responses={200: TimelineEntrySerializer})
    @action(detail=True, methods=["post"], url_path=r"messages/(?P<entry_id>\d+)/not-sent")
    def mark_not_sent(self, request, pk=None, entry_id=None):
        """Declare a reply whose outcome is unknown as not delivered (then it can be sent again)."""
        from channels_inbound.delivery import message_mark_not_sent

        ticket = self.get_object()
        entry = get_object_or_404(TimelineEntry, pk=entry_id, ticket=ticket, direction=TimelineEntry.Direction.OUTBOUND)
        if entry.delivery_status != TimelineEntry.Delivery.UNKNOWN or not message_mark_not_sent(entry=entry, by=request.user):
            raise Conflict(_("Only a message whose outcome is unknown can be marked as not delivered."))
        return Response(TimelineEntrySerializer(selectors.ticket_timeline(ticket).get(pk=entry.pk)).data)


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.PrimaryKeyRelatedField(many=True, queryset=User.objects.filter(is_active=True), required=False)

    class Meta:
        model = Team
        fields = ["id", "name", "members", "created_at"]


class TeamViewSet(viewsets.ModelViewSet):
    """Teams; agents read, admins write."""

    token_scope = ApiToken.Scope.STAFF
    serializer_class = TeamSerializer
    permission_classes = [AdminWritesStaffReads]
    queryset = Team.objects.prefetch_related("members").order_by("name")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        serializer.instance = services.team_save(team=None, **serializer.validated_data)

    def perform_update(self, serializer):
        services.team_save(team=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.team_delete(team=instance)
