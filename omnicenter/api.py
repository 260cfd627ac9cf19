from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import mixins, routers, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from omnicenter import roles
from omnicenter.models import ApiToken, User
from omnicenter.permissions import TOKEN_SCOPE_ANY


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

    token_scope = ApiToken.Scope.STAFF
    serializer_class = UserSerializer
    queryset = User.objects.filter(is_active=True).prefetch_related("groups", "teams").order_by("username")

    @action(detail=False, methods=["get"])
    def me(self, request):
        return Response(self.get_serializer(request.user).data)


class ApiRootView(routers.APIRootView):
    """The list of /api/v1/ resources: no data, so any API token may read it."""

    token_scope = TOKEN_SCOPE_ANY


class Router(routers.DefaultRouter):
    APIRootView = ApiRootView


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema describes every endpoint and holds no data: any API token may read it."""

    token_scope = TOKEN_SCOPE_ANY


class SchemaDocsView(SpectacularSwaggerView):
    token_scope = TOKEN_SCOPE_ANY
