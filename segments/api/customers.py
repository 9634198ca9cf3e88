"""`PUT /api/v1/customers/{external_id}/` and `POST /api/v1/customers/bulk/`.

Bodies are not validated by serializers: every record goes through the one cleansing path
(`segments.services.cleansing`), which stores bad birthdays, emails, phones and zones as
flagged blanks and rejects only what cannot be stored. The serializers here document the
shapes for the OpenAPI schema and render responses.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import ApiScope
from segments.errors import InvalidCustomer
from segments.services.customers import MAX_BULK_ROWS, bulk_upsert_customers, upsert_customer


class CustomerInputSerializer(serializers.Serializer):
    """Every field is optional on update: only the fields sent are changed."""

    name = serializers.CharField(required=False, max_length=200)
    email = serializers.CharField(required=False, help_text="Normalised; invalid -> blank + flag.")
    phone = serializers.CharField(
        required=False, help_text="Normalised to E.164; invalid -> blank + flag."
    )
    birthday = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="YYYY-MM-DD; unknown, impossible or future dates -> null + flag.",
    )
    timezone = serializers.CharField(
        required=False, help_text="IANA zone; unknown zones -> the default zone + flag."
    )
    locale = serializers.CharField(required=False, max_length=16)
    level = serializers.CharField(required=False, max_length=32)
    wechat_openid = serializers.CharField(required=False, max_length=64)
    email_consent = serializers.BooleanField(required=False)
    sms_consent = serializers.BooleanField(required=False)
    wechat_consent = serializers.BooleanField(required=False)
    unsubscribed_at = serializers.DateTimeField(required=False, allow_null=True)
    attributes = serializers.DictField(required=False, help_text="Replaces the stored attributes.")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Tag codes; replaces the customer's tags (tags are created on first use).",
    )


class BulkCustomerSerializer(CustomerInputSerializer):
    external_id = serializers.CharField(max_length=128)


class QualityFlagSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    value = serializers.JSONField()


class CustomerSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    birthday = serializers.DateField(allow_null=True)
    timezone = serializers.CharField()
    locale = serializers.CharField()
    level = serializers.CharField()
    wechat_openid = serializers.CharField()
    email_consent = serializers.BooleanField()
    sms_consent = serializers.BooleanField()
    wechat_consent = serializers.BooleanField()
    unsubscribed_at = serializers.DateTimeField(allow_null=True)
    attributes = serializers.DictField()
    tags = serializers.ListField(child=serializers.CharField())
    quality_flags = QualityFlagSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


ROW_ERROR = inline_serializer(
    "BulkRowError",
    {
        "index": serializers.IntegerField(),
        "external_id": serializers.JSONField(),
        "errors": inline_serializer(
            "BulkFieldError",
            {
                "field": serializers.CharField(),
                "code": serializers.CharField(),
                "message": serializers.CharField(),
            },
            many=True,
        ),
    },
    many=True,
)


def _body_object(request: Request) -> dict:
    if not isinstance(request.data, dict):
        raise InvalidCustomer("The body must be a JSON object of customer fields.")
    return request.data


class CustomerUpsertView(APIView):
    required_scope = ApiScope.CUSTOMERS

    @extend_schema(
        operation_id="upsert_customer",
        request=CustomerInputSerializer,
        responses={200: CustomerSerializer, 201: CustomerSerializer},
    )
    def put(self, request: Request, external_id: str) -> Response:
        customer, created = upsert_customer(external_id=external_id, data=_body_object(request))
        return Response(
            CustomerSerializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class CustomerBulkView(APIView):
    required_scope = ApiScope.CUSTOMERS

    @extend_schema(
        operation_id="bulk_upsert_customers",
        description=(
            f"Upsert up to {MAX_BULK_ROWS} customers in one transaction. Good rows are stored; "
            "each bad row is reported by index, field and reason. More rows: 400 too_many_rows, "
            "nothing stored."
        ),
        request=inline_serializer(
            "BulkCustomers", {"customers": BulkCustomerSerializer(many=True)}
        ),
        responses={
            200: inline_serializer(
                "BulkCustomersResult",
                {
                    "received": serializers.IntegerField(),
                    "stored": serializers.IntegerField(),
                    "rejected": ROW_ERROR,
                    "flagged": inline_serializer(
                        "BulkRowFlags",
                        {
                            "index": serializers.IntegerField(),
                            "external_id": serializers.CharField(),
                            "flags": QualityFlagSerializer(many=True),
                        },
                        many=True,
                    ),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        rows = _body_object(request).get("customers")
        if not isinstance(rows, list):
            raise InvalidCustomer(
                'Send {"customers": [...]}, a list of customer objects.',
                details=[{"path": "customers", "code": "required", "message": "Expected a list."}],
            )
        result = bulk_upsert_customers(rows=rows)
        return Response(
            {
                "received": result.received,
                "stored": result.stored,
                "rejected": result.rejected,
                "flagged": result.flagged,
            }
        )
