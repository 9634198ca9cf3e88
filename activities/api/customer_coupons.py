"""`GET /api/v1/customers/{external_id}/coupons/?state=usable|redeemed|expired`."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors
from core.models import ApiScope


class CustomerCouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    benefit = serializers.CharField(source="benefit.code")
    activity = serializers.CharField(source="activity.code")
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    state = serializers.CharField()
    order = serializers.CharField(allow_blank=True)


class CouponPagination(CursorPagination):
    ordering = ("-created_at", "-pk")
    page_size = 50


class CustomerCouponsView(APIView):
    required_scope = ApiScope.COUPONS

    @extend_schema(
        operation_id="list_customer_coupons",
        parameters=[
            OpenApiParameter("state", OpenApiTypes.STR, enum=list(selectors.COUPON_STATES))
        ],
        responses={
            200: inline_serializer(
                "PaginatedCustomerCouponList",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": CustomerCouponSerializer(many=True),
                },
            )
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        state = request.query_params.get("state")
        if state not in selectors.COUPON_STATES:
            state = None
        paginator = CouponPagination()
        page = paginator.paginate_queryset(
            selectors.customer_coupons(external_id=external_id, state=state, now=timezone.now()),
            request,
            view=self,
        )
        return paginator.get_paginated_response(CustomerCouponSerializer(page, many=True).data)
