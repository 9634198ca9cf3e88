"""`GET /api/v1/activities/{code}/assists/{request}/`: a help request's state, helpers, expiry."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors_subjects
from activities.models import Activity, HelpRequestState
from core.errors import NotFound
from core.models import ApiScope


class HelpRequestSerializer(serializers.Serializer):
    code = serializers.CharField()
    state = serializers.ChoiceField(choices=HelpRequestState.choices)
    initiator = serializers.CharField()
    needed = serializers.IntegerField(help_text="Friends needed.")
    helpers = serializers.IntegerField(help_text="Friends who helped so far.")
    customers = serializers.ListField(
        child=serializers.CharField(), help_text="Helpers' external ids, in the order they helped."
    )
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was fulfilled or expired."
    )


class HelpRequestView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(operation_id="get_help_request", responses={200: HelpRequestSerializer})
    def get(self, request: Request, code: str, help_request: str) -> Response:
        activity = Activity.objects.filter(code=code).first()
        found = (
            selectors_subjects.help_request(activity_id=activity.pk, code=help_request)
            if activity
            else None
        )
        if found is None:
            raise NotFound(f"Activity {code!r} has no help request {help_request!r}.")
        return Response(HelpRequestSerializer(selectors_subjects.request_view(found)).data)
