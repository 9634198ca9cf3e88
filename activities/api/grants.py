"""`GET /api/v1/customers/{external_id}/grants/`."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors
from activities.models import GrantState
from core.models import ApiScope


class CustomerGrantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    activity = serializers.CharField(source="activity.code")
    benefit = serializers.CharField(source="benefit.code")
    kind = serializers.CharField(source="benefit.kind")
    quantity = serializers.IntegerField()
    remaining = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    state = serializers.CharField()
    created_at = serializers.DateTimeField()


class GrantPagination(CursorPagination):
    ordering = ("-created_at", "-pk")
    page_size = 50


class CustomerGrantsView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(
        operation_id="list_customer_grants",
        parameters=[OpenApiParameter("state", OpenApiTypes.STR, enum=list(GrantState.values))],
        responses={
            200: inline_serializer(
                "PaginatedCustomerGrantList",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": CustomerGrantSerializer(many=True),
                },
            )
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        state = request.query_params.get("state")
        if state not in (None, *GrantState.values):
            state = None
        paginator = GrantPagination()
        page = paginator.paginate_queryset(
            selectors.customer_grants(external_id=external_id, state=state), request, view=self
        )
        return paginator.get_paginated_response(CustomerGrantSerializer(page, many=True).data)
