"""`GET /api/v1/activities/{code}/teams/{team}/`: a group-buy team's state, members, expiry."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors_subjects
from activities.models import Activity, TeamState
from core.errors import NotFound
from core.models import ApiScope


class TeamSerializer(serializers.Serializer):
    code = serializers.CharField()
    state = serializers.ChoiceField(choices=TeamState.choices)
    size = serializers.IntegerField()
    members = serializers.IntegerField(help_text="Members so far.")
    customers = serializers.ListField(
        child=serializers.CharField(), help_text="Members' external ids, in the order they joined."
    )
    leader = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(
        allow_null=True, help_text="When it completed or expired."
    )


class TeamView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(operation_id="get_team", responses={200: TeamSerializer})
    def get(self, request: Request, code: str, team: str) -> Response:
        activity = Activity.objects.filter(code=code).first()
        found = selectors_subjects.team(activity_id=activity.pk, code=team) if activity else None
        if found is None:
            raise NotFound(f"Activity {code!r} has no team {team!r}.")
        return Response(TeamSerializer(selectors_subjects.team_view(found)).data)
