"""`/api/v1/catalog/products/` (search, translation and channel variant) and
`/api/v1/catalog/validate/` (check a configuration against the rules)."""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from catalog import search, selectors, services
from catalog.models import TEXT_LANGUAGES, Product
from customers.models import Customer
from omnicenter import roles
from omnicenter.models import ApiToken
from omnicenter.pagination import SearchPagination


class CatalogReader(permissions.BasePermission):
    """Agents, supervisors, admins and their tokens, read-only ones included: validating a
    configuration changes nothing, so a read-only bot token may POST to validate too."""

    def has_permission(self, request, view) -> bool:
        return roles.is_agent(request.user)


def is_bot_token(auth) -> bool:
    return isinstance(auth, ApiToken) and auth.read_only


CHANNEL_HELP = _("Channel kind (sms, whatsapp, webchat, email, portal, web...): short variant for messaging, full otherwise.")


class ProductSerializer(serializers.ModelSerializer):
    # A plain string: the ticket "status" enum already owns the name StatusEnum in the schema.
    status = serializers.CharField(read_only=True, help_text=_("draft, active or retired"))
    category = serializers.SerializerMethodField()
    name = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField()
    served = serializers.SerializerMethodField(help_text=_("Which translation and variant this response serves."))
    translations = serializers.SerializerMethodField()
    prices = serializers.SerializerMethodField()
    images = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "sku", "kind", "status", "category", "name", "text", "served", "translations", "prices", "images",
                  "updated_at"]

    def _served(self, obj) -> selectors.ServedText:
        cache = self.context.setdefault("_served", {})
        if obj.pk not in cache:
            cache[obj.pk] = selectors.product_text_for(obj, language=self.context.get("lang"), channel=self.context.get("channel", ""))
        return cache[obj.pk]

    def get_category(self, obj) -> str | None:
        return obj.category.name if obj.category_id else None

    def get_name(self, obj) -> str:
        return self._served(obj).name

    def get_text(self, obj) -> str:
        return self._served(obj).text

    def get_served(self, obj) -> dict:
        served = self._served(obj)
        return {
            "language": served.language, "requested_language": served.requested_language,
            "variant": served.variant, "channel": served.channel or None,
            "fallback": served.language != served.requested_language or served.variant == "description",
        }

    def get_translations(self, obj) -> list[str]:
        return [text.language for text in obj.texts.all()]

    def get_images(self, obj) -> list[dict]:
        request = self.context.get("request")
        return [{"url": request.build_absolute_uri(reverse("catalog-image", args=[image.pk])) if request else "",
                 "alt": image.alt} for image in obj.images.all()]

    def get_prices(self, obj) -> list[dict]:
        return [{"market": p.market, "currency": p.currency, "amount": format(p.amount, "f")} for p in obj.prices.all()]


_DATETIME = serializers.DateTimeField()


def product_representation(product: selectors.ProductRow, *, language: str | None, channel: str,
                           image_url=None) -> dict:
    """A product as the API serves it: exactly what ``ProductSerializer`` (the documented schema)
    returns, built as a plain dict from plain values. The serializer and the model instances
    behind it cost about 1 ms of CPU per product on these machines, more than the search
    statement for a page of 20 (docs/performance.md); tests/catalog/test_api.py checks that both
    agree field for field."""
    served = selectors.served_text(product.texts, sku=product.sku, source_language=product.source_language,
                                   language=language, channel=channel)
    return {
        "id": product.id,
        "sku": product.sku,
        "kind": product.kind,
        "status": product.status,
        "category": product.category,
        "name": served.name,
        "text": served.text,
        "served": {
            "language": served.language, "requested_language": served.requested_language,
            "variant": served.variant, "channel": served.channel or None,
            "fallback": served.language != served.requested_language or served.variant == "description",
        },
        "translations": list(product.texts),
        "prices": product.prices,
        "images": [{"url": image_url(image["id"]) if image_url else "", "alt": image["alt"]} for image in product.images],
        "updated_at": _DATETIME.to_representation(product.updated_at),
    }


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [CatalogReader]
    serializer_class = ProductSerializer
    pagination_class = SearchPagination

    def _status(self) -> str:
        # A read-only token is a bot's, serving customers: released (active) products only, as the
        # knowledge base serves bots public articles only.
        if is_bot_token(self.request.auth):
            return Product.Status.ACTIVE
        return self.request.query_params.get("status", Product.Status.ACTIVE)

    def get_queryset(self):
        # Ids and filters only: what is shown of a product is read by selectors.product_rows.
        queryset = Product.objects.all()
        status = self._status()
        if status != "all" and not (self.action == "retrieve" and roles.is_admin(self.request.user)
                                    and not is_bot_token(self.request.auth)):
            queryset = queryset.filter(status=status)
        if category := self.request.query_params.get("category"):
            queryset = queryset.filter(Q(category__name=category))
        return queryset

    def get_serializer_context(self):
        params = self.request.query_params
        if params.get("lang") and params["lang"] not in selectors.LANGUAGE_CODES:
            raise ValidationError({"lang": [_("Unknown language; one of: %(list)s.")
                                            % {"list": ", ".join(selectors.LANGUAGE_CODES)}]})
        return {**super().get_serializer_context(), "lang": params.get("lang") or self.request.LANGUAGE_CODE,
                "channel": params.get("channel", "")}

    @extend_schema(parameters=[
        OpenApiParameter("q", str, description=_("Search: full text per language, typo-tolerant on names and SKUs; best first.")),
        OpenApiParameter("lang", str, enum=[code for code, _name in TEXT_LANGUAGES]),
        OpenApiParameter("channel", str, description=CHANNEL_HELP),
        OpenApiParameter("status", str, description=_("draft, active (default), retired or all; read-only tokens: active only")),
        OpenApiParameter("category", str),
    ])
    def list(self, request, *args, **kwargs):
        self.get_serializer_context()  # refuses a bad ?lang= before any search
        queryset = self.get_queryset()
        query = request.query_params.get("q", "").strip()
        if not query:
            page = self.paginate_queryset(queryset.values_list("pk", flat=True))
            return self.get_paginated_response(self._represent(list(page)))
        params = request.query_params
        status = self._status()
        ranked = search.search_product_ids(query, include_inactive=status != Product.Status.ACTIVE)
        if status not in (Product.Status.ACTIVE, "all") or params.get("category"):
            allowed = set(queryset.filter(pk__in=ranked).values_list("pk", flat=True))
            ranked = [pk for pk in ranked if pk in allowed]
        page = self.paginate_queryset(ranked)
        return self.get_paginated_response(self._represent(page))

    def _represent(self, ids: list[int]) -> list[dict]:
        """The products of these ids, in this order, as plain dicts (one statement on PostgreSQL)."""
        context = self.get_serializer_context()
        rows = selectors.product_rows(ids)

        def image_url(image_id: int) -> str:
            return self.request.build_absolute_uri(reverse("catalog-image", args=[image_id]))

        return [product_representation(rows[pk], language=context["lang"], channel=context["channel"], image_url=image_url)
                for pk in ids if pk in rows]

    def retrieve(self, request, *args, **kwargs):
        return Response(self._represent([self.get_object().pk])[0])


class ItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=100_000, default=1)


class ValidateSerializer(serializers.Serializer):
    items = ItemSerializer(many=True, allow_empty=False, max_length=200)
    customer = serializers.IntegerField(required=False, allow_null=True)
    market = serializers.RegexField(r"^[A-Za-z]{2,8}$", required=False, allow_blank=True, default="")
    lang = serializers.ChoiceField(choices=[code for code, _name in TEXT_LANGUAGES], required=False)

    def validate_items(self, items):
        skus = {item["sku"] for item in items}
        found = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
        # Keyed by line number, as DRF reports errors inside a list.
        errors = {
            index: {"sku": [_("Unknown SKU %(sku)s.") % {"sku": item["sku"]}]}
            for index, item in enumerate(items) if item["sku"] not in found
        }
        if errors:
            raise serializers.ValidationError(errors)
        return [(found[item["sku"]], item["quantity"]) for item in items]

    def validate_customer(self, value):
        if value is None:
            return None
        customer = Customer.objects.filter(pk=value, merged_into__isnull=True).first()
        if customer is None:
            raise serializers.ValidationError(_("Unknown customer."))
        return customer


ViolationSerializer = inline_serializer("Violation", {
    "rule": serializers.CharField(), "rule_id": serializers.IntegerField(allow_null=True),
    "products": serializers.ListField(child=serializers.CharField()), "message": serializers.CharField(),
}, many=True)


class ValidateViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    permission_classes = [CatalogReader]
    serializer_class = ValidateSerializer

    @extend_schema(request=ValidateSerializer, responses=inline_serializer("ValidationResult", {
        "valid": serializers.BooleanField(), "language": serializers.CharField(), "market": serializers.CharField(),
        "violations": ViolationSerializer,
    }))
    def create(self, request, *args, **kwargs):
        serializer = ValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.validate_configuration(
            items=data["items"], customer=data.get("customer"), market=data.get("market", ""),
            language=data.get("lang") or request.LANGUAGE_CODE,
        )
        return Response({
            "valid": result.valid, "language": result.language, "market": result.market,
            "violations": [violation.as_dict() for violation in result.violations],
        })
