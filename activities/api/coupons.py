"""`POST /api/v1/coupons/{code}/redeem/` and `POST /api/v1/coupons/{code}/release/`."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities.services import redemptions
from core.api.fields import ExternalIdField
from core.errors import error_body
from core.models import ApiScope

IDEMPOTENCY_KEY_MAX = 255
CONFLICT_CODES = (
    "coupon_expired, coupon_already_redeemed, coupon_revoked, coupon_not_yours, "
    "coupon_not_yet_valid, coupon_order_mismatch"
)


class RedeemSerializer(serializers.Serializer):
    customer = ExternalIdField()
    order = serializers.CharField(max_length=128)


class ReleaseSerializer(serializers.Serializer):
    order = serializers.CharField(max_length=128)


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    state = serializers.CharField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    benefit = serializers.CharField()
    activity = serializers.CharField()
    customer = serializers.CharField()
    order = serializers.CharField(allow_null=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    redeemed_at = serializers.DateTimeField(allow_null=True)


_ERRORS = {
    404: OpenApiResponse(description="coupon_not_found: no coupon has this code."),
    409: OpenApiResponse(
        description=f"The coupon cannot be used; `code` is one of {CONFLICT_CODES}."
    ),
}


def _key_problem(key: str) -> Response | None:
    if not key:
        return Response(
            error_body(
                "idempotency_key_missing", "Send an Idempotency-Key header, unique per redemption."
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if len(key) > IDEMPOTENCY_KEY_MAX:
        return Response(
            error_body(
                "idempotency_key_too_long",
                f"The Idempotency-Key may have at most {IDEMPOTENCY_KEY_MAX} characters.",
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )
    return None


class RedeemCouponView(APIView):
    required_scope = ApiScope.COUPONS

    @extend_schema(
        operation_id="redeem_coupon",
        request=RedeemSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="1-255 characters; the same key gets the same answer.",
            )
        ],
        responses={200: CouponSerializer, **_ERRORS},
    )
    def post(self, request: Request, code: str) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if (problem := _key_problem(key)) is not None:
            return problem
        serializer = RedeemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = redemptions.redeem_coupon(
            code=code,
            customer=serializer.validated_data["customer"],
            order=serializer.validated_data["order"],
            client_id=request.auth.pk,
            idempotency_key=key,
        )
        return Response(answer.body, status=answer.status)


class ReleaseCouponView(APIView):
    required_scope = ApiScope.COUPONS

    @extend_schema(
        operation_id="release_coupon",
        request=ReleaseSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Optional: releasing again is answered the same without one.",
            )
        ],
        responses={200: CouponSerializer, **_ERRORS},
    )
    def post(self, request: Request, code: str) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if key and (problem := _key_problem(key)) is not None:
            return problem
        serializer = ReleaseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = redemptions.release_coupon(
            code=code,
            order=serializer.validated_data["order"],
            client_id=request.auth.pk,
            idempotency_key=key or None,
        )
        return Response(answer.body, status=answer.status)
