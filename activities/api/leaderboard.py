"""`GET /api/v1/activities/{code}/leaderboard/?limit=N&customer=ID`: the top N places and one
customer's rank and score."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors_subjects
from activities.models import Activity
from core.api.fields import ExternalIdField
from core.errors import NotFound
from core.models import ApiScope
from segments.models import Customer

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


class LeaderboardQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    customer = ExternalIdField(required=False)


class PlaceSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    customer = serializers.CharField()
    score = serializers.IntegerField()


class CustomerPlaceSerializer(serializers.Serializer):
    customer = serializers.CharField()
    rank = serializers.IntegerField(allow_null=True, help_text="Null until the customer scores.")
    score = serializers.IntegerField(allow_null=True)


class LeaderboardSerializer(serializers.Serializer):
    activity = serializers.CharField()
    participants = serializers.IntegerField(help_text="Customers with a score.")
    top = PlaceSerializer(many=True, help_text="By score, then by who reached it first.")
    customer = CustomerPlaceSerializer(
        allow_null=True, help_text="The customer asked for with ?customer=, else null."
    )


class LeaderboardView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(
        operation_id="get_leaderboard",
        parameters=[
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"Places, 1 to {MAX_LIMIT} (default 10)."
            ),
            OpenApiParameter("customer", OpenApiTypes.STR, description="An external id."),
        ],
        responses={200: LeaderboardSerializer},
    )
    def get(self, request: Request, code: str) -> Response:
        activity = Activity.objects.filter(code=code).first()
        if activity is None:
            raise NotFound(f"There is no activity {code!r}.")
        query = LeaderboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        top = selectors_subjects.leaderboard_top(
            activity_id=activity.pk, limit=query.validated_data["limit"]
        )
        body = {
            "activity": activity.code,
            "participants": selectors_subjects.participants(activity_id=activity.pk),
            "top": [{"rank": p.rank, "customer": p.customer, "score": p.score} for p in top],
            "customer": None,
        }
        external_id = query.validated_data.get("customer")
        if external_id is not None:
            customer_id = (
                Customer.objects.filter(external_id=external_id)
                .values_list("pk", flat=True)
                .first()
            )
            ranked = (
                selectors_subjects.rank_of(activity_id=activity.pk, customer_id=customer_id)
                if customer_id is not None
                else None
            )
            body["customer"] = {
                "customer": external_id,
                "rank": ranked[0] if ranked else None,
                "score": ranked[1] if ranked else None,
            }
        return Response(LeaderboardSerializer(body).data)
