"""Roles fit the work (operators import customers; viewers read) and the activity list shows
the working set (archived activities only when asked)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from activities.models import Activity, ActivityState
from segments.models import Customer
from tests.e2e.scenario import activity_on, quiz_template, role_user

pytestmark = pytest.mark.django_db


def test_operators_import_customers_and_viewers_cannot(client):
    client.force_login(role_user("Operator", "olivia"))
    upload = SimpleUploadedFile("c.csv", b"external_id,name\nc-1,Ann\n")
    response = client.post(reverse("admin:segments_customer_import"), {"file": upload})
    assert response.status_code == 200
    assert Customer.objects.get(external_id="c-1").name == "Ann"
    client.force_login(role_user("Viewer", "vera"))
    assert client.get(reverse("admin:segments_customer_import")).status_code == 404


def test_archived_activities_are_hidden_unless_asked(client):
    client.force_login(role_user("Viewer", "vera"))
    template = quiz_template()
    live = activity_on(template, code="live")
    old = activity_on(template, code="old")
    Activity.objects.filter(pk=old.pk).update(state=ActivityState.ARCHIVED)
    url = reverse("admin:activities_activity_changelist")

    def listed(query: str = "") -> set[str]:
        return {a.code for a in client.get(url + query).context["cl"].queryset}

    assert listed() == {live.code}
    assert listed("?archived=include") == {"live", "old"}
    assert listed("?archived=only") == {"old"}
    assert listed("?state__exact=archived") == {"old"}
