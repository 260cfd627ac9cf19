from __future__ import annotations

from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from omnicenter import roles
from omnicenter.models import User


class UserSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)
    role = serializers.SerializerMethodField()
    teams = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "name", "email", "language", "role", "teams", "is_active"]

    def get_role(self, obj) -> str | None:
        return roles.role_of(obj)


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staff members with their role and teams."""

    serializer_class = UserSerializer
    queryset = User.objects.filter(is_active=True).prefetch_related("groups", "teams").order_by("username")

    @action(detail=False, methods=["get"])
    def me(self, request):
        return Response(self.get_serializer(request.user).data)
