"""`GET /api/v1/customers/{external_id}/activities/{code}/`: a customer's progress in one
activity, in one call; each gameplay adds its own section (docs/gameplays.md)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities.api.assists import HelpRequestSerializer
from activities.api.teams import TeamSerializer
from activities.definitions.gameplays.progress import customer_progress
from activities.models import Activity
from activities.selectors_journeys import customer_waits, has_wait_steps
from core.errors import NotFound
from core.models import ApiScope


class StreakProgressSerializer(serializers.Serializer):
    length = serializers.IntegerField(help_text="Current streak of consecutive local days.")
    cycle_days = serializers.IntegerField()
    days_this_cycle = serializers.IntegerField()
    checked_in_today = serializers.BooleanField()
    today = serializers.DateField(
        help_text="The customer's local day (their zone, or the activity's)."
    )
    best = serializers.IntegerField()
    days_total = serializers.IntegerField()
    next_milestones = serializers.ListField(child=serializers.IntegerField())


class TaskProgressSerializer(serializers.Serializer):
    key = serializers.CharField()
    channel = serializers.CharField()
    target = serializers.IntegerField()
    count = serializers.IntegerField()
    done = serializers.BooleanField()


class TasksProgressSerializer(serializers.Serializer):
    items = TaskProgressSerializer(many=True)
    done = serializers.IntegerField()
    left = serializers.IntegerField()


class TallySerializer(serializers.Serializer):
    candidate = serializers.CharField()
    votes = serializers.IntegerField()


class VotesSerializer(serializers.Serializer):
    today = serializers.DateField(help_text="The activity's local day.")
    per_day = serializers.IntegerField()
    used_today = serializers.IntegerField()
    left_today = serializers.IntegerField()
    voted_today = serializers.ListField(
        child=serializers.CharField(), help_text="Candidates this customer voted for today."
    )
    tallies = TallySerializer(many=True, help_text="The leading candidates, most votes first.")


class WaitingSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    chain = serializers.CharField(help_text="The channel of the chain the run belongs to.")
    step = serializers.IntegerField(help_text="The wait step, counted from 1.")
    resumes_at = serializers.DateTimeField(help_text="When the run goes on at the latest.")
    awaiting = serializers.CharField(
        allow_null=True, help_text="The channel whose event ends the wait early, if any."
    )


class CustomerProgressSerializer(serializers.Serializer):
    activity = serializers.CharField()
    customer = serializers.CharField()
    gameplay = serializers.CharField(allow_null=True)
    balances = serializers.DictField(child=serializers.IntegerField())
    streak = StreakProgressSerializer(required=False, help_text="checkin-streak activities.")
    tasks = TasksProgressSerializer(required=False, help_text="tasks activities.")
    assist = HelpRequestSerializer(
        required=False,
        allow_null=True,
        help_text="assist activities: the customer's open help request, else their last one.",
    )
    team = TeamSerializer(
        required=False,
        allow_null=True,
        help_text="group-buy activities: the customer's forming team, else their last one.",
    )
    votes = VotesSerializer(required=False, help_text="vote activities.")
    score = serializers.IntegerField(
        required=False, allow_null=True, help_text="leaderboard activities; null before scoring."
    )
    rank = serializers.IntegerField(required=False, allow_null=True)
    participants = serializers.IntegerField(
        required=False, help_text="leaderboard activities: customers with a score."
    )
    waiting = WaitingSerializer(
        many=True,
        required=False,
        help_text="Activities with wait steps: the customer's runs waiting now (docs/journeys.md).",
    )


class CustomerProgressView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(
        operation_id="get_customer_progress", responses={200: CustomerProgressSerializer}
    )
    def get(self, request: Request, external_id: str, code: str) -> Response:
        activity = Activity.objects.select_related("template").filter(code=code).first()
        if activity is None:
            raise NotFound(f"There is no activity {code!r}.")
        body = customer_progress(activity=activity, external_id=external_id)
        if has_wait_steps(template_id=activity.template_id):
            body["waiting"] = WaitingSerializer(
                customer_waits(activity_id=activity.pk, external_id=external_id), many=True
            ).data
        return Response(body)
