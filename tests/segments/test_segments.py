"""Segments: selectors (contains, members, keyset pages), static members, snapshots, the
admin's form errors, count preview and sample, CSV in and out, the generator, and an
activity's audience segment through the engine."""

import csv
import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from activities.models import ChainRun, RunOutcome
from activities.services.events import process_event, record_system_event
from segments.models import Customer, Order, Segment, SegmentSnapshot, Tag
from segments.selectors import segment_contains, segment_customer_id_pages, segment_customers
from segments.services.segments import (
    add_static_members,
    add_static_members_by_tags,
    refresh_snapshot,
)
from segments.tasks import refresh_segment_snapshot_task
from tests.factories import ActivityFactory, ChainFactory, ChannelFactory, StepFactory
from tests.segments.factories import CustomerFactory, SegmentFactory, TagFactory

pytestmark = pytest.mark.django_db

GOLD = {"field": "customer.level", "op": "eq", "value": "gold"}


@pytest.fixture
def golds():
    return [CustomerFactory(level="gold" if i % 3 == 0 else "silver") for i in range(30)]


def test_dynamic_segment_selectors(golds):
    segment = SegmentFactory(rule=GOLD)
    expected = [c.pk for c in golds if c.level == "gold"]
    assert sorted(segment_customers(segment_id=segment.pk).values_list("pk", flat=True)) == expected
    assert segment_contains(segment_id=segment.pk, customer_id=expected[0])
    assert not segment_contains(segment_id=segment.pk, customer_id=golds[1].pk)
    pages = list(segment_customer_id_pages(segment_id=segment.pk, page_size=4))
    assert [len(page) for page in pages] == [4, 4, 2]
    assert [pk for page in pages for pk in page] == expected


def test_pages_of_an_exact_multiple_end_cleanly(golds):
    segment = SegmentFactory(rule=GOLD)
    assert [len(p) for p in segment_customer_id_pages(segment_id=segment.pk, page_size=5)] == [5, 5]


def test_members_query_composes_into_a_keyset_insert_select(golds):
    segment = SegmentFactory(rule=GOLD)
    cursor = golds[3].pk
    page = segment_customers(segment_id=segment.pk).filter(pk__gt=cursor).order_by("pk")
    assert list(page.values_list("pk", flat=True)) == [
        c.pk for c in golds if c.level == "gold" and c.pk > cursor
    ]


def test_a_dynamic_segment_without_a_rule_has_nobody(golds):
    segment = SegmentFactory(rule=None)
    assert not segment_customers(segment_id=segment.pk).exists()
    assert not segment_contains(segment_id=segment.pk, customer_id=golds[0].pk)


def test_static_segment_from_external_ids_and_tags(golds):
    segment = SegmentFactory(kind=Segment.Kind.STATIC)
    added, unknown = add_static_members(
        segment_id=segment.pk,
        external_ids=[golds[0].external_id, golds[1].external_id, "ghost", golds[0].external_id],
    )
    assert (added, unknown) == (2, ["ghost"])
    vip = TagFactory(code="vip")
    golds[1].tag_set.add(vip)
    golds[2].tag_set.add(vip)
    assert add_static_members_by_tags(segment_id=segment.pk, tag_codes=["vip"]) == 1
    members = set(segment_customers(segment_id=segment.pk).values_list("pk", flat=True))
    assert members == {golds[0].pk, golds[1].pk, golds[2].pk}
    assert segment_contains(segment_id=segment.pk, customer_id=golds[2].pk)
    assert not segment_contains(segment_id=segment.pk, customer_id=golds[3].pk)


def test_snapshot_refresh_rewrites_membership_and_the_count(golds):
    segment = SegmentFactory(rule=GOLD)
    assert refresh_segment_snapshot_task.run(segment.pk) == 10
    snapshot = set(
        SegmentSnapshot.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )
    assert snapshot == {c.pk for c in golds if c.level == "gold"}
    Customer.objects.filter(pk=golds[1].pk).update(level="gold")
    assert refresh_snapshot(segment_id=segment.pk) == 11
    segment.refresh_from_db()
    assert segment.member_count == 11
    assert segment.snapshot_at is not None
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 11
    assert refresh_segment_snapshot_task.run(999_999) is None


# --- an activity's audience segment, through the engine -------------------------------------


def test_event_from_a_customer_outside_the_segment_is_rejected(golds):
    segment = SegmentFactory(rule=GOLD)
    chain = ChainFactory(channel=ChannelFactory(code="quiz.completed"))
    StepFactory(chain=chain, position=0, processor="build_result")
    activity = ActivityFactory(template=chain.template, segment=segment, running=True)
    inside, outside = golds[0], golds[1]
    for customer in (inside, outside):
        event = record_system_event(
            channel_code="quiz.completed",
            customer=customer,
            payload={},
            idempotency_key=f"quiz:{customer.pk}",
        )
        process_event(event_id=event.pk)
    runs = {run.customer_id: run for run in ChainRun.objects.filter(activity=activity)}
    assert runs[outside.pk].outcome == RunOutcome.REJECTED
    assert runs[outside.pk].reason == "not_in_segment"
    assert runs[inside.pk].outcome == RunOutcome.COMPLETED


# --- admin -------------------------------------------------------------------------------------


def segment_form(**overrides):
    return {"code": "gold", "name": "Gold", "description": "", "kind": "dynamic", **overrides}


@pytest.mark.parametrize(
    ("kind", "rule", "message"),
    [
        (
            "dynamic",
            '{"field": "customer.shoe", "op": "eq", "value": 1}',
            "Unknown customer",
        ),
        (
            "dynamic",
            '{"field": "customer.level", "op": "like", "value": "g"}',
            "Unknown operator",
        ),
        (
            "dynamic",
            '{"field": "customer.level", "op": "eq", "value": 5}',
            "customer.level eq takes a string",
        ),
        ("dynamic", "null", "A dynamic segment needs a rule."),
        ("dynamic", "{not json", "Enter a valid JSON."),
    ],
)
def test_admin_refuses_bad_rules_with_a_form_error(admin_client, kind, rule, message):
    response = admin_client.post(
        reverse("admin:segments_segment_add"), segment_form(kind=kind, rule=rule)
    )
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors.get("rule", []))
    assert message in errors
    assert not Segment.objects.exists()


def test_admin_saves_a_good_rule_and_previews_count_and_sample(admin_client, golds):
    response = admin_client.post(
        reverse("admin:segments_segment_add"),
        segment_form(rule='{"field": "customer.level", "op": "eq", "value": "gold"}'),
    )
    assert response.status_code == 302
    segment = Segment.objects.get()
    page = admin_client.get(reverse("admin:segments_segment_preview", args=[segment.pk]))
    assert page.context["count"] == 10
    assert [c.pk for c in page.context["sample"]] == [c.pk for c in golds if c.level == "gold"]
    assert 'id="segment-sample"' in page.content.decode()
    segment.refresh_from_db()
    assert segment.member_count == 10


def test_admin_adds_static_members(admin_client, golds):
    segment = SegmentFactory(kind=Segment.Kind.STATIC, code="list")
    upload = SimpleUploadedFile("ids.csv", f"external_id\n{golds[5].external_id}\n".encode())
    response = admin_client.post(
        reverse("admin:segments_segment_members", args=[segment.pk]),
        {"external_ids": f"{golds[0].external_id}, nobody", "file": upload, "tags": ""},
    )
    assert response.status_code == 302
    assert set(segment_customers(segment_id=segment.pk)) == {golds[0], golds[5]}
    segment.refresh_from_db()
    assert segment.member_count == 2


def test_admin_data_quality_filter(admin_client):
    flagged = CustomerFactory(
        quality_flags=[{"field": "birthday", "code": "invalid_date", "value": "unknown"}]
    )
    CustomerFactory()
    url = reverse("admin:segments_customer_changelist")
    for query in ("?quality=flagged", "?quality=invalid_date"):
        listed = list(admin_client.get(url + query).context["cl"].queryset)
        assert listed == [flagged]
    assert admin_client.get(url + "?quality=unknown_timezone").context["cl"].queryset.count() == 0


def test_admin_csv_import_uses_the_cleansing_path(admin_client):
    text = (
        "external_id,name,birthday,email,tags,email_consent\n"
        'csv-1,Ann,unknown,ANN@EXAMPLE.COM,"vip,new-user",yes\n'
        "csv-2,Bob,1990-13-45,,,no\n"
        ",No id,,,,\n"
        "csv-3,Cid,1991-01-01,,,perhaps\n"
    )
    response = admin_client.post(
        reverse("admin:segments_customer_import"),
        {"file": SimpleUploadedFile("c.csv", text.encode())},
    )
    assert response.status_code == 200
    assert [(row["line"], row["errors"][0]["field"]) for row in response.context["rejected"]] == [
        (4, "external_id"),
        (5, "email_consent"),
    ]
    ann = Customer.objects.get(external_id="csv-1")
    assert (ann.email, ann.birthday, ann.email_consent, ann.tags) == (
        "ann@example.com",
        None,
        True,
        ("new-user", "vip"),
    )
    assert ann.quality_flags[0]["code"] == "invalid_date"
    assert Customer.objects.get(external_id="csv-2").quality_flags[0]["value"] == "1990-13-45"
    # The flagged rows are listed, each flag in words.
    assert [(row["line"], row["problems"]) for row in response.context["flagged"]] == [
        (2, [{"field": "birthday", "problem": "invalid birthday", "value": "unknown"}]),
        (3, [{"field": "birthday", "problem": "invalid birthday", "value": "1990-13-45"}]),
    ]
    assert 'id="flagged-rows"' in response.content.decode()
    assert Customer.objects.count() == 2


def test_admin_csv_import_refuses_unknown_columns(admin_client):
    response = admin_client.post(
        reverse("admin:segments_customer_import"),
        {"file": SimpleUploadedFile("c.csv", b"external_id,shoe\nx,42\n")},
    )
    assert "Unknown column 'shoe'" in " ".join(response.context["form"].errors["file"])
    assert not Customer.objects.exists()


def test_admin_csv_export_round_trips(admin_client):
    customer = CustomerFactory(
        external_id="exp-1", name="Eve", birthday=dt.date(1990, 1, 2), attributes={"city": "sh"}
    )
    customer.tag_set.add(TagFactory(code="b"), TagFactory(code="a"))
    response = admin_client.post(
        reverse("admin:segments_customer_changelist"),
        {"action": "export_csv", "_selected_action": [customer.pk]},
    )
    text = b"".join(response.streaming_content).decode()
    lines = text.strip().splitlines()
    assert lines[0].startswith("external_id,name,email")
    assert lines[1].startswith("exp-1,Eve,")
    assert '"a,b"' in lines[1] and "1990-01-02" in lines[1]
    Customer.objects.all().delete()
    admin_client.post(
        reverse("admin:segments_customer_import"),
        {"file": SimpleUploadedFile("c.csv", text.encode())},
    )
    again = Customer.objects.get(external_id="exp-1")
    assert (again.name, again.birthday, again.attributes, again.tags) == (
        "Eve",
        dt.date(1990, 1, 2),
        {"city": "sh"},
        ("a", "b"),
    )


def test_admin_csv_export_escapes_formulas_and_the_import_restores_them(admin_client):
    CustomerFactory(
        external_id="=cmd|' /C calc'!A0", name="@SUM(1+1)", phone="+8613800138000", level="-1"
    )
    response = admin_client.post(
        reverse("admin:segments_customer_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(Customer.objects.values_list("pk", flat=True)),
        },
    )
    text = b"".join(response.streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(text)))
    assert (row["external_id"], row["name"], row["phone"], row["level"]) == (
        "'=cmd|' /C calc'!A0",
        "'@SUM(1+1)",
        "'+8613800138000",
        "'-1",
    )
    Customer.objects.all().delete()
    admin_client.post(
        reverse("admin:segments_customer_import"),
        {"file": SimpleUploadedFile("c.csv", text.encode())},
    )
    again = Customer.objects.get()
    assert (again.external_id, again.name, again.phone, again.level) == (
        "=cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "+8613800138000",
        "-1",
    )


# --- the generator -----------------------------------------------------------------------------


def test_generate_customers(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("generate_customers", "250", "--batch", "100", stdout=out, stderr=err)
    assert Customer.objects.filter(external_id__startswith="gen-").count() == 250
    assert Order.objects.exists()
    assert Tag.objects.filter(code="vip").exists()
    assert err.getvalue().count("\n") == 3  # one progress line per batch
    assert "250/250" in err.getvalue()
    # Generated orders obey the model's invariants.
    assert not Order.objects.filter(
        state__in=["paid", "shipped", "completed"], paid_at=None
    ).exists()
    with pytest.raises(CommandError):
        call_command("generate_customers", "5", stdout=out, stderr=err)


def test_openapi_schema_documents_the_sync_api(api):
    schema = api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "put" in paths["/api/v1/customers/{external_id}/"]
    assert "post" in paths["/api/v1/customers/bulk/"]
    assert "put" in paths["/api/v1/orders/{external_id}/"]
    transition = paths["/api/v1/orders/{external_id}/{transition}/"]["post"]
    assert {"200", "409"} <= set(transition["responses"])


def test_snapshot_task_runs_on_the_fanout_queue():
    assert refresh_segment_snapshot_task.queue == "fanout"
