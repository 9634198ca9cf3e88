"""`POST /api/v1/events/` and `GET /api/v1/events/{id}/`."""

import re
import time

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors
from activities.models import ChainRun, Event, EventState, WaitingRun, WaitState
from activities.services import waiters
from activities.services.events import accept_event
from core.api.fields import ExternalIdField
from core.errors import error_body
from core.models import ApiScope

IDEMPOTENCY_KEY_MAX = 255
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*([^,;\s]*)")
# More digits than this is no number of seconds anyone means (and int() of thousands is slow).
PREFER_WAIT_DIGITS = re.compile(r"[0-9]{1,6}")
MAX_PAYLOAD_KEYS = 200


class EventCreateSerializer(serializers.Serializer):
    channel = serializers.CharField(max_length=100)
    customer = ExternalIdField()
    payload = serializers.DictField(required=False, default=dict)
    activity = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)

    def validate_payload(self, value: dict) -> dict:
        if len(value) > MAX_PAYLOAD_KEYS:
            raise serializers.ValidationError(f"At most {MAX_PAYLOAD_KEYS} top-level keys.")
        return value


class GrantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    benefit = serializers.CharField(source="benefit.code")
    kind = serializers.CharField(source="benefit.kind")
    quantity = serializers.IntegerField()
    remaining = serializers.IntegerField()
    state = serializers.CharField()
    idempotency_key = serializers.CharField()


class RunSerializer(serializers.Serializer):
    activity = serializers.CharField(source="activity.code")
    outcome = serializers.CharField(
        help_text="granted, completed, rejected, failed, skipped; waiting while a journey "
        "waits (then one of the others, or cancelled)."
    )
    reason = serializers.CharField()
    grants = GrantSerializer(many=True)
    result = serializers.JSONField()
    steps = serializers.JSONField()
    duration_ms = serializers.FloatField(allow_null=True)
    resumes_at = serializers.SerializerMethodField(
        help_text="While waiting: when the run goes on at the latest (its timeout)."
    )
    awaiting = serializers.SerializerMethodField(
        help_text="While waiting for an event: its channel (the run goes on when it comes)."
    )

    def _waiting(self, run: ChainRun) -> WaitingRun | None:
        waiting = getattr(run, "waiting", None)
        return waiting if waiting is not None and waiting.state == WaitState.WAITING else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_resumes_at(self, run: ChainRun) -> str | None:
        waiting = self._waiting(run)
        return serializers.DateTimeField().to_representation(waiting.due_at) if waiting else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_awaiting(self, run: ChainRun) -> str | None:
        waiting = self._waiting(run)
        return waiting.channel.code if waiting and waiting.channel else None


class EventSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(source="state")
    channel = serializers.CharField(source="channel.code")
    customer = serializers.CharField(source="customer.external_id")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    runs = RunSerializer(many=True)


def _event_response(request: Request, event: Event, http_status: int) -> Response:
    body = EventSerializer(event).data
    body["url"] = request.build_absolute_uri(reverse("api:event-detail", args=[event.pk]))
    return Response(body, status=http_status)


def _load(request: Request, event_id: object) -> Event | None:
    return selectors.event_with_runs(event_id=event_id, client_id=request.auth.pk)


class EventListCreateView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(
        operation_id="fire_event",
        request=EventCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="1-255 characters, unique per event.",
            ),
            OpenApiParameter(
                "Prefer",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="wait=N (N <= 10): answer 200 with the result.",
            ),
        ],
        responses={
            200: EventSerializer,
            202: inline_serializer(
                "EventAccepted",
                {
                    "id": serializers.UUIDField(),
                    "status": serializers.CharField(),
                    "url": serializers.URLField(),
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return Response(
                error_body(
                    "idempotency_key_missing", "Send an Idempotency-Key header, unique per event."
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
        wait = _requested_wait(request.headers.get("Prefer", ""))
        serializer = EventCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event, created = accept_event(
            client=request.auth,
            idempotency_key=key,
            channel_code=data["channel"],
            customer_external_id=data["customer"],
            payload=data["payload"],
            activity_code=data["activity"],
            awaited=bool(wait),
        )
        if wait:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if selectors.event_state(event_id=event.pk) in (EventState.DONE, EventState.FAILED):
                    break
                waiters.wait_for(event_id=event.pk, timeout=min(1.0, deadline - time.monotonic()))
            return _event_response(request, _load(request, event.pk), status.HTTP_200_OK)
        if not created:
            return _event_response(request, _load(request, event.pk), status.HTTP_200_OK)
        return Response(
            {
                "id": str(event.pk),
                "status": event.state,
                "url": request.build_absolute_uri(reverse("api:event-detail", args=[event.pk])),
            },
            status=status.HTTP_202_ACCEPTED,
        )


class InvalidPrefer(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_prefer"
    default_detail = "Prefer: wait=N takes a whole number of seconds (at most 10 are waited)."


def _requested_wait(prefer: str) -> int:
    match = PREFER_WAIT.search(prefer)
    if match is None:
        return 0
    if not PREFER_WAIT_DIGITS.fullmatch(match.group(1)):
        raise InvalidPrefer()
    return min(int(match.group(1)), settings.GAMBIT_MAX_WAIT_SECONDS)


class EventDetailView(APIView):
    required_scope = ApiScope.EVENTS

    @extend_schema(operation_id="get_event", responses={200: EventSerializer})
    def get(self, request: Request, event_id: str) -> Response:
        event = _load(request, event_id)
        if event is None:
            return Response(
                error_body("not_found", "No such event for this API key."),
                status=status.HTTP_404_NOT_FOUND,
            )
        return _event_response(request, event, status.HTTP_200_OK)
