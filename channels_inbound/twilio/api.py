"""What the composer needs for WhatsApp: whether the 24-hour window is open, and sending an
approved template (Content SID plus variables) when it is not.

    GET  /api/v1/tickets/<id>/whatsapp/           -> {"channel", "number", "window_open_until",
                                                      "template_required", "opted_out_at"}
    POST /api/v1/tickets/<id>/whatsapp/template/  {"content_sid": "HX…", "variables": {"1": "Anna"}}
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_inbound.twilio import messaging
from omnicenter.errors import DomainError
from omnicenter.models import ApiToken
from omnicenter.permissions import IsStaffMember
from tickets import selectors as ticket_selectors
from tickets.models import TimelineEntry


class NoWhatsAppConversation(DomainError):
    status_code = 404
    code = "no_whatsapp"


def whatsapp_target(ticket) -> TimelineEntry:
    """The customer's latest WhatsApp message on this ticket: its channel and number get the reply."""
    last = (
        ticket.entries.filter(direction=TimelineEntry.Direction.INBOUND, channel__kind="whatsapp",
                              channel__is_active=True, identity__customer_id=ticket.customer_id)
        .select_related("channel", "identity").order_by("-created_at", "-pk").first()
    )
    if last is None:
        raise NoWhatsAppConversation(_("The customer has not written on WhatsApp on this ticket."))
    return last


class TemplateSerializer(serializers.Serializer):
    content_sid = serializers.RegexField(r"^HX[0-9a-fA-F]{32}$", help_text=_("The approved template's Content SID (HX…)."))
    variables = serializers.DictField(child=serializers.CharField(max_length=1000, allow_blank=True),
                                      required=False, default=dict)

    def validate_variables(self, value: dict) -> dict:
        if len(value) > 50 or any(not key.isalnum() or len(key) > 30 for key in value):
            raise serializers.ValidationError(_("Variables are named by short keys such as \"1\" or \"name\"."))
        return value


WINDOW = inline_serializer("WhatsAppWindow", {
    "channel": serializers.CharField(), "number": serializers.CharField(),
    "window_open_until": serializers.DateTimeField(allow_null=True), "template_required": serializers.BooleanField(),
    "opted_out_at": serializers.DateTimeField(allow_null=True),
})


class WhatsAppWindowView(APIView):
    token_scope = ApiToken.Scope.TICKETS
    permission_classes = [IsStaffMember]

    @extend_schema(responses={200: WINDOW})
    def get(self, request, ticket_id: int):
        """Whether a free-form WhatsApp reply can be sent now, and until when."""
        ticket = ticket_selectors.ticket_for_agent(request.user, ticket_id)
        last = whatsapp_target(ticket)
        until = messaging.window_open_until(identity=last.identity)
        return Response({
            "channel": last.channel.key, "number": last.identity.value, "window_open_until": until,
            "template_required": until is None,
            "opted_out_at": messaging.opted_out_at(identity=last.identity, channel_kind="whatsapp"),
        })


class WhatsAppTemplateView(APIView):
    token_scope = ApiToken.Scope.TICKETS
    permission_classes = [IsStaffMember]

    @extend_schema(request=TemplateSerializer, responses={201: inline_serializer("TemplateQueued", {"id": serializers.IntegerField()})})
    def post(self, request, ticket_id: int):
        """Queue an approved template for the customer's WhatsApp number (allowed outside the window)."""
        ticket = ticket_selectors.ticket_for_agent(request.user, ticket_id)
        body = TemplateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        last = whatsapp_target(ticket)
        entry = messaging.template_send(ticket=ticket, by=request.user, channel=last.channel, identity=last.identity,
                                        content_sid=body.validated_data["content_sid"],
                                        variables=body.validated_data["variables"])
        return Response({"id": entry.pk, "delivery_status": entry.delivery_status}, status=status.HTTP_201_CREATED)
