"""`GET /api/v1/activities/` and a customer's participation in one."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors
from activities.models import Activity
from core.errors import NotFound
from core.models import ApiScope


class BenefitSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    stock_remaining = serializers.IntegerField(allow_null=True)


class ActivitySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    template = serializers.CharField(source="template.code")
    timezone = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    channels = serializers.SerializerMethodField()
    benefits = BenefitSerializer(many=True)

    def get_channels(self, activity: Activity) -> list[str]:
        return sorted(chain.channel.code for chain in activity.template.chains.all())


class ParticipationSerializer(serializers.Serializer):
    activity = serializers.CharField()
    customer = serializers.CharField()
    balances = serializers.DictField(child=serializers.IntegerField())
    counters = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    data = serializers.DictField()


class ActivityListView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(
        operation_id="list_running_activities", responses={200: ActivitySerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return Response(ActivitySerializer(selectors.running_activities(), many=True).data)


class ParticipationView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(operation_id="get_participation", responses={200: ParticipationSerializer})
    def get(self, request: Request, code: str, external_id: str) -> Response:
        activity = Activity.objects.filter(code=code).first()
        if activity is None:
            raise NotFound(f"There is no activity {code!r}.")
        summary = selectors.participation_summary(activity=activity, external_id=external_id)
        return Response(ParticipationSerializer(summary).data)
