"""`GET /api/v1/broadcasts/{id}/`: a broadcast and its progress."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.models import ApiScope
from notifications import selectors
from notifications.models import Broadcast


class ProgressSerializer(serializers.Serializer):
    planning_done = serializers.BooleanField()
    planned = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    skipped_by_reason = serializers.DictField(child=serializers.IntegerField())
    outstanding = serializers.IntegerField()
    errors_since_resume = serializers.IntegerField()
    percent = serializers.FloatField()


class BroadcastSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    state = serializers.CharField()
    state_reason = serializers.CharField()
    channel = serializers.CharField(source="template.channel")
    template = serializers.CharField(source="template.code")
    segment = serializers.CharField(source="segment.code")
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    occurrence = serializers.DateTimeField(allow_null=True)
    send_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.SerializerMethodField()

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, broadcast: Broadcast) -> dict:
        body = selectors.progress(broadcast)
        return {key: body[key] for key in ProgressSerializer().fields}


class BroadcastDetailView(APIView):
    required_scope = ApiScope.BROADCASTS

    @extend_schema(operation_id="get_broadcast", responses={200: BroadcastSerializer})
    def get(self, request: Request, broadcast_id: int) -> Response:
        broadcast = (
            Broadcast.objects.select_related("template", "segment").filter(pk=broadcast_id).first()
        )
        if broadcast is None:
            raise NotFound("No such broadcast.")
        return Response(BroadcastSerializer(broadcast).data)
