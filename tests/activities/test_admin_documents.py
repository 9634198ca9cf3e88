"""Export an activity as its YAML document and import one from the activity list; problems are
listed by their path in the document and nothing is written."""

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from activities.models import Activity
from tests.e2e.scenario import activity_on, quiz_template, role_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(role_user("Operator", "olivia"))
    return client


def upload(document: dict) -> dict:
    text = yaml.safe_dump(document, allow_unicode=True).encode()
    return {"file": SimpleUploadedFile("activity.yaml", text)}


def test_export_then_import_a_copy(operator):
    activity = activity_on(quiz_template())
    response = operator.get(reverse("admin:activities_activity_export", args=[activity.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="spring-quiz.yaml"'
    document = yaml.safe_load(response.content)
    assert document["code"] == "spring-quiz"
    document["code"] = "spring-quiz-copy"
    response = operator.post(reverse("admin:activities_activity_import"), upload(document))
    copy = Activity.objects.get(code="spring-quiz-copy")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:activities_activity_change", args=[copy.pk])
    assert copy.state == "draft"


def test_import_lists_problems_by_path_and_writes_nothing(operator):
    activity = activity_on(quiz_template())
    document = yaml.safe_load(
        operator.get(reverse("admin:activities_activity_export", args=[activity.pk])).content
    )
    document["code"] = "other"
    del document["name"]
    document["chains"][0]["steps"][1]["config"]["key"] = "Check in Day!"
    response = operator.post(reverse("admin:activities_activity_import"), upload(document))
    assert response.status_code == 200
    problems = {p["path"]: p["message"] for p in response.context["problems"]}
    assert problems["name"] == "Name is required."
    assert not Activity.objects.filter(code="other").exists()
    assert 'id="gambit-import-problems"' in response.content.decode()


def test_the_list_offers_import_to_those_who_may_add(operator, client):
    page = operator.get(reverse("admin:activities_activity_changelist")).content.decode()
    assert 'data-action="import"' in page
    client.force_login(role_user("Viewer", "vera"))
    page = client.get(reverse("admin:activities_activity_changelist")).content.decode()
    assert 'data-action="import"' not in page
    assert client.get(reverse("admin:activities_activity_import")).status_code == 403
