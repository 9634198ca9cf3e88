"""`PUT /api/v1/orders/{external_id}/` and `POST /api/v1/orders/{external_id}/{transition}/`."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import ExternalIdField
from core.errors import error_body
from core.models import ApiScope
from segments.errors import OrderTransitionNotAllowed
from segments.models import ORDER_TRANSITIONS, OrderState
from segments.services.orders import transition_order, upsert_order


class OrderInputSerializer(serializers.Serializer):
    customer = ExternalIdField(help_text="The customer's external id.")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="CNY")
    placed_at = serializers.DateTimeField()
    attributes = serializers.DictField(required=False)
    state = serializers.ChoiceField(
        choices=OrderState.choices,
        required=False,
        help_text=(
            "Only when the order is new: a non-pending state records history and raises no "
            "event. Later changes go through the transition endpoint."
        ),
    )
    paid_at = serializers.DateTimeField(required=False)


class OrderSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    customer = serializers.CharField(source="customer.external_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    state = serializers.CharField()
    placed_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    shipped_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)
    attributes = serializers.DictField()
    allowed_transitions = serializers.SerializerMethodField()

    def get_allowed_transitions(self, order) -> list[str]:
        return sorted(t.name for t in order.get_available_state_transitions())


class TransitionInputSerializer(serializers.Serializer):
    at = serializers.DateTimeField(
        required=False, help_text="When it happened at the storefront; default now."
    )


class OrderUpsertView(APIView):
    required_scope = ApiScope.ORDERS

    @extend_schema(
        operation_id="upsert_order",
        request=OrderInputSerializer,
        responses={
            200: OrderSerializer,
            201: OrderSerializer,
            409: OpenApiResponse(description="state differs: use the transition endpoint."),
        },
    )
    def put(self, request: Request, external_id: str) -> Response:
        serializer = OrderInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            order, created = upsert_order(
                external_id=external_id,
                customer_external_id=data["customer"],
                amount=data["amount"],
                currency=data["currency"],
                placed_at=data["placed_at"],
                attributes=data.get("attributes"),
                state=data.get("state"),
                paid_at=data.get("paid_at"),
            )
        except OrderTransitionNotAllowed as error:
            return _conflict(error)
        return Response(
            OrderSerializer(order).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class OrderTransitionView(APIView):
    required_scope = ApiScope.ORDERS

    @extend_schema(
        operation_id="transition_order",
        description=(
            "Move the order through its state machine: pending -> paid -> shipped -> "
            "completed; pending|paid -> cancelled; paid|shipped -> refunded. Each transition "
            "raises the channel event order.<new state> for activities. Repeating a transition "
            "that already happened answers 200 with changed=false."
        ),
        parameters=[
            OpenApiParameter(
                "transition", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(ORDER_TRANSITIONS)
            )
        ],
        request=TransitionInputSerializer,
        responses={
            200: OrderSerializer,
            409: OpenApiResponse(
                description="transition_not_allowed, with allowed_transitions from this state."
            ),
        },
    )
    def post(self, request: Request, external_id: str, transition: str) -> Response:
        serializer = TransitionInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        try:
            order, changed = transition_order(
                external_id=external_id,
                transition=transition,
                at=serializer.validated_data.get("at"),
            )
        except OrderTransitionNotAllowed as error:
            return _conflict(error)
        return Response({**OrderSerializer(order).data, "changed": changed})


def _conflict(error: OrderTransitionNotAllowed) -> Response:
    """409 in the usual error shape, plus the transitions the order does allow now."""
    body = error_body(error.code, error.message, error.details)
    body["allowed_transitions"] = error.allowed
    return Response(body, status=status.HTTP_409_CONFLICT)
