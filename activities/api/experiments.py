"""`GET /api/v1/activities/{code}/experiment/`: results per variant of the activity's splits."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities.experiments import selectors, stats
from activities.models import Activity
from core.errors import NotFound
from core.models import ApiScope


class VariantResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    weight = serializers.FloatField(allow_null=True)
    is_control = serializers.BooleanField()
    exposures = serializers.IntegerField()
    conversions = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    rate_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval.")
    rate_high = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=["control", "compared", "not_enough_data"])
    uplift = serializers.FloatField(
        allow_null=True, help_text="Rate minus the control's rate (absolute)."
    )
    relative_uplift = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="95% interval of the uplift.")
    ci_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Two-proportion z-test.")


class GoalResultSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    channel = serializers.CharField()
    window_seconds = serializers.IntegerField()
    condition = serializers.JSONField(allow_null=True)
    enough_data = serializers.BooleanField()
    variants = VariantResultSerializer(many=True)


class ExperimentResultSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    control = serializers.CharField()
    exposures = serializers.DictField(child=serializers.IntegerField())
    goals = GoalResultSerializer(many=True)


class ActivityExperimentSerializer(serializers.Serializer):
    activity = serializers.CharField()
    rule = serializers.CharField(help_text='When a variant leaves "not enough data yet".')
    experiments = ExperimentResultSerializer(many=True)


class ActivityExperimentView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(
        operation_id="get_activity_experiment", responses={200: ActivityExperimentSerializer}
    )
    def get(self, request: Request, code: str) -> Response:
        activity = Activity.objects.filter(code=code).first()
        if activity is None:
            raise NotFound(f"There is no activity {code!r}.")
        experiments = selectors.activity_experiments(activity=activity)
        if not experiments:
            raise NotFound(f"Activity {code!r} has no experiment (no split step has run yet).")
        body = {"activity": activity.code, "rule": stats.rule(), "experiments": experiments}
        return Response(ActivityExperimentSerializer(body).data)
