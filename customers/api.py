from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from customers import identities, selectors, services
from customers.models import Customer, CustomerMerge, Identity
from omnicenter import roles
from omnicenter.errors import NotAllowed
from omnicenter.models import ApiToken
from omnicenter.permissions import IsAdmin, IsSupervisor
from tickets.api import TimelineEntrySerializer
from tickets.selectors import customer_timeline


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["id", "kind", "namespace", "value", "verified", "display_name", "created_at", "last_seen_at"]
        read_only_fields = ["id", "namespace", "created_at", "last_seen_at"]


class MergeSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerMerge
        fields = ["id", "into", "other", "merged_by", "merged_at", "undone_at", "undone_by"]


class CustomerSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    # A method field: a dotted source with a default is skipped in PATCH responses (DRF's partial).
    organization = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id", "public_id", "display_name", "lifecycle_stage", "language", "attributes", "organization",
            "identities", "merged_into", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "public_id", "merged_into", "created_at", "updated_at"]

    def get_organization(self, obj) -> str | None:
        return obj.organization.name if obj.organization_id else None

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("Attributes must be a JSON object."))
        return value


class NewIdentitySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[Identity.Kind.EMAIL, Identity.Kind.PHONE, Identity.Kind.EXTERNAL])
    value = serializers.CharField(max_length=320)
    namespace = serializers.CharField(
        max_length=100, required=False, default="", help_text=_("For external ids: the key of the API channel they belong to.")
    )

    def validate(self, attrs):
        try:
            attrs["claim"] = identities.claim(attrs["kind"], attrs["value"], namespace=attrs["namespace"] if attrs["kind"] == "external" else "")
        except identities.InvalidIdentity as exc:
            raise serializers.ValidationError({"value": [exc.message]}) from exc
        return attrs


class CustomerCreateSerializer(CustomerSerializer):
    new_identities = NewIdentitySerializer(many=True, required=False, write_only=True, source="identities_in")

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "new_identities"]


def _check_may_merge(user, *customers: Customer) -> None:
    """Supervisors merge anyone; an agent only customers all of whose tickets they may see,
    since a merge shows each profile's history on the other."""
    if roles.is_supervisor(user):
        return
    from tickets.models import Ticket
    from tickets.selectors import tickets_visible_to

    hidden = Ticket.objects.filter(customer__in=customers).exclude(pk__in=tickets_visible_to(user).values("pk"))
    if hidden.exists():
        raise NotAllowed(_("These customers have tickets you cannot see; ask a supervisor to merge them."))


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                      mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Unified customer profiles. `?search=` matches name, email and phone."""

    token_scope = ApiToken.Scope.CUSTOMERS
    serializer_class = CustomerSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        queryset = Customer.objects.select_related("organization").prefetch_related("identities").order_by("-pk")
        if self.action == "list":
            queryset = selectors.customer_search(queryset.filter(merged_into__isnull=True), self.request.query_params.get("search", ""))
        return queryset

    def get_serializer_class(self):
        return CustomerCreateSerializer if self.action == "create" else CustomerSerializer

    @extend_schema(parameters=[OpenApiParameter("search", str, description="name, email or phone")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        claims = [item["claim"] for item in data.pop("identities_in", [])]
        serializer.instance = services.customer_create(claims=claims, **data)

    def perform_update(self, serializer):
        services.customer_update(customer=serializer.instance, **serializer.validated_data)

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        """Every entry of this customer's tickets that you may see, across channels, oldest first."""
        customer = self.get_object()
        page = self.paginate_queryset(customer_timeline(request.user, customer))
        return self.get_paginated_response(TimelineEntrySerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        request=inline_serializer("MergeRequest", {"other": serializers.IntegerField()}),
        responses={201: MergeSerializer},
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge customer `other` into this one. Undo with `unmerge`."""
        into = self.get_object()
        other_id = request.data.get("other")
        if not isinstance(other_id, int) or isinstance(other_id, bool):
            return Response({"other": [_("Give the id of the customer to merge in.")]}, status=400)
        other = get_object_or_404(Customer, pk=other_id)
        _check_may_merge(request.user, into, other)
        merge = services.customer_merge(into=into, other=other, by=request.user)
        return Response(MergeSerializer(merge).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=inline_serializer("UnmergeRequest", {"merge": serializers.IntegerField()}), responses=MergeSerializer)
    @action(detail=True, methods=["post"])
    def unmerge(self, request, pk=None):
        """Undo a merge into this customer, restoring exactly what moved."""
        into = self.get_object()
        merge_id = request.data.get("merge")
        if not isinstance(merge_id, int) or isinstance(merge_id, bool):
            return Response({"merge": [_("Give the id of the merge to undo.")]}, status=400)
        merge = get_object_or_404(CustomerMerge, pk=merge_id, into=into)
        _check_may_merge(request.user, into, merge.other)
        services.customer_unmerge(merge=merge, by=request.user)
        merge.refresh_from_db()
        return Response(MergeSerializer(merge).data)

    @action(detail=True, methods=["get"])
    def merges(self, request, pk=None):
        customer = self.get_object()
        return Response(MergeSerializer(CustomerMerge.objects.filter(into=customer), many=True).data)

    @action(detail=True, methods=["get"], permission_classes=[IsSupervisor])
    def export(self, request, pk=None):
        """GDPR export of everything held about the customer (supervisors and admins)."""
        return Response(services.customer_export(customer=self.get_object()))

    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def erase(self, request, pk=None):
        """GDPR erasure: anonymize the customer, keep ticket statistics (admins)."""
        services.customer_erase(customer=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
