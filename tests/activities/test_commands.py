"""The operator commands: import/export an activity, create an API key, seed the demo."""

import datetime as dt
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from activities.definitions import dump_definition, parse_text
from activities.definitions.gameplays import shipped_documents
from activities.definitions.loading import MAX_DOCUMENT_BYTES
from activities.models import Activity, ActivityState, ChainRun, Grant, RunOutcome
from activities.services.events import process_event
from core.models import StorefrontKey
from core.timezones import to_local

pytestmark = pytest.mark.django_db

DEMO = "activities/definitions/demo/spring-quiz-lottery.yaml"


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_document():
    with open(DEMO) as handle:
        return parse_text(handle.read())


def write(tmp_path, document, name="activity.yaml"):
    path = tmp_path / name
    path.write_text(dump_definition(document, format="json" if name.endswith(".json") else "yaml"))
    return path


# --- import_activity ---------------------------------------------------------------------------


def test_import_activity(tmp_path, demo_document):
    output = run("import_activity", str(write(tmp_path, demo_document)))
    assert output == (
        "Imported activity spring-quiz-lottery (template quiz-lottery, 3 benefits, 2 chains): "
        "draft.\n"
    )
    assert Activity.objects.get().code == "spring-quiz-lottery"


def test_import_activity_reads_the_appendix_file_itself():
    assert run("import_activity", DEMO).startswith("Imported activity spring-quiz-lottery")


def test_import_activity_from_standard_input(monkeypatch):
    with open(DEMO, "rb") as handle:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(handle.read())))
    assert run("import_activity", "-").startswith("Imported activity spring-quiz-lottery")


def test_import_activity_json(tmp_path, demo_document):
    output = run("import_activity", str(write(tmp_path, demo_document, "activity.json")))
    assert output.startswith("Imported activity spring-quiz-lottery")


def test_import_activity_launch_starts_an_open_window(tmp_path, demo_document):
    now = timezone.now().astimezone(dt.UTC).replace(tzinfo=None)
    demo_document.update(
        timezone="UTC",
        starts_at=(now - dt.timedelta(minutes=5)).isoformat(timespec="seconds"),
        ends_at=(now + dt.timedelta(days=3)).isoformat(timespec="seconds"),
    )
    output = run("import_activity", str(write(tmp_path, demo_document)), "--launch")
    assert output.endswith("2 chains): running.\n")
    assert Activity.objects.get().state == ActivityState.RUNNING


def test_import_activity_errors_list_paths_and_write_nothing(tmp_path, demo_document):
    demo_document["chains"][1]["steps"][1]["config"]["prizes"][0]["weight"] = 0
    demo_document["chains"][0]["steps"][0]["config"]["all"][0]["field"] = (
        "customer.favourite_colour"
    )
    with pytest.raises(CommandError) as excinfo:
        run("import_activity", str(write(tmp_path, demo_document)))
    lines = str(excinfo.value).splitlines()
    assert lines[0] == "The activity definition is not valid."
    assert lines[1].startswith("  chains[0].steps[0].config.all[0].field: Unknown customer field")
    assert lines[1].endswith("[unknown_field]")
    assert lines[2] == (
        "  chains[1].steps[1].config.prizes[0].weight: Weight must be more than 0. [invalid_config]"
    )
    assert not Activity.objects.exists()


def test_import_activity_refuses_what_is_not_a_regular_file(tmp_path):
    for path, message in (
        ("/dev/zero", "/dev/zero is not a regular file."),
        (str(tmp_path), f"Cannot read {tmp_path}: Is a directory"),
        (
            str(tmp_path / "missing.yaml"),
            f"Cannot read {tmp_path}/missing.yaml: No such file or directory",
        ),
    ):
        with pytest.raises(CommandError) as excinfo:
            run("import_activity", path)
        assert str(excinfo.value) == message


def test_import_activity_refuses_an_oversized_file(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_DOCUMENT_BYTES)
    with pytest.raises(CommandError) as excinfo:
        run("import_activity", str(path))
    assert str(excinfo.value) == (
        "The activity definition is not valid.\n"
        f"  (document): The document is {MAX_DOCUMENT_BYTES + 1} bytes; the limit is "
        f"{MAX_DOCUMENT_BYTES}. [document_too_large]"
    )


# --- export_activity ---------------------------------------------------------------------------


def test_export_activity_yaml_and_json(demo_document):
    run("import_activity", DEMO)
    assert parse_text(run("export_activity", "spring-quiz-lottery")) == demo_document
    as_json = run("export_activity", "spring-quiz-lottery", "--format", "json")
    assert json.loads(as_json) == demo_document


def test_export_then_import_elsewhere(tmp_path, demo_document):
    run("import_activity", DEMO)
    exported = run("export_activity", "spring-quiz-lottery")
    Activity.objects.all().delete()
    path = tmp_path / "copy.yaml"
    path.write_text(exported)
    run("import_activity", str(path))
    assert parse_text(run("export_activity", "spring-quiz-lottery")) == demo_document


def test_export_unknown_activity():
    with pytest.raises(CommandError) as excinfo:
        run("export_activity", "nope")
    assert str(excinfo.value) == "There is no activity nope."


# --- create_api_key ----------------------------------------------------------------------------


def test_create_api_key_prints_the_key_once():
    output = run("create_api_key", "shop", "--scopes", "events,customers")
    lines = output.splitlines()
    key = StorefrontKey.objects.get()
    assert lines[0] == (
        f"Created API key 'shop' (prefix {key.prefix}) with scopes: events, customers."
    )
    assert lines[1] == "Store it now; it is not shown again:"
    assert StorefrontKey.objects.get_from_key(lines[2]) == key
    assert key.scopes == ["events", "customers"]


def test_create_api_key_needs_its_scopes_named():
    with pytest.raises(CommandError, match="--scopes"):
        run("create_api_key", "shop")
    assert not StorefrontKey.objects.exists()


def test_a_key_created_without_scopes_may_do_nothing():
    _key, raw = StorefrontKey.objects.create_key(name="bare")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.get("/api/v1/activities/")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


@pytest.mark.parametrize("scopes", ["events,admin", ",", ""])
def test_create_api_key_refuses_unknown_scopes(scopes):
    with pytest.raises(CommandError) as excinfo:
        run("create_api_key", "shop", "--scopes", scopes)
    assert "use a comma-separated list of events, customers, orders, broadcasts" in str(
        excinfo.value
    )
    assert not StorefrontKey.objects.exists()


# --- seed_demo ---------------------------------------------------------------------------------


def printed_key(output):
    return re.search(
        r"^Demo API key \(shown once\): (\S+) \(scopes: events\)$", output, re.M
    ).group(1)


def test_seed_demo_creates_a_running_activity_and_a_working_key():
    output = run("seed_demo")
    # One running demo activity per shipped gameplay.
    assert Activity.objects.count() == len(shipped_documents())
    assert set(Activity.objects.values_list("state", flat=True)) == {ActivityState.RUNNING}
    assert {"spring-quiz-lottery", "checkin-streak-demo", "tasks-demo"} <= set(
        Activity.objects.values_list("code", flat=True)
    )
    activity = Activity.objects.get(code="spring-quiz-lottery")
    assert activity.state == ActivityState.RUNNING
    opens = to_local(activity.starts_at, "Asia/Shanghai")
    assert (opens.date(), opens.time()) == (
        to_local(timezone.now(), "Asia/Shanghai").date(),
        dt.time(0, 0),
    )
    assert activity.ends_at - activity.starts_at == dt.timedelta(days=31, seconds=-1)
    assert output.splitlines()[0] == (
        f"Created activity spring-quiz-lottery ({opens.date()}T00:00:00 to "
        f"{(opens + dt.timedelta(days=30)).date()}T23:59:59, Asia/Shanghai): running."
    )

    key = printed_key(output)
    curl = output[output.index("curl") :]
    assert curl.startswith("curl -X POST http://127.0.0.1:8000/api/v1/events/ \\\n")
    assert f"-H 'Authorization: Api-Key {key}'" in curl
    body = json.loads(re.search(r"-d '(.*)'", curl).group(1))
    idempotency_key = re.search(r"-H 'Idempotency-Key: (\S+)'", curl).group(1)

    client = APIClient()
    response = client.post(
        "/api/v1/events/",
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_IDEMPOTENCY_KEY=idempotency_key,
    )
    assert response.status_code == 202, response.content
    process_event(event_id=response.json()["id"])
    run_ = ChainRun.objects.get()
    assert run_.outcome == RunOutcome.GRANTED
    assert Grant.objects.get().benefit.code == "chance"


def test_seed_demo_twice_is_idempotent():
    first = run("seed_demo")
    second = run("seed_demo")
    assert Activity.objects.count() == len(shipped_documents())
    assert second.splitlines()[0] == "Activity spring-quiz-lottery already exists: running."
    assert "Activity checkin-streak-demo already exists: running." in second.splitlines()
    live = StorefrontKey.objects.filter(name="demo", revoked=False)
    assert list(live.values_list("prefix", flat=True)) == [printed_key(second).split(".")[0]]
    assert StorefrontKey.objects.get_from_key(printed_key(second)).revoked is False
    assert StorefrontKey.objects.filter(name="demo", revoked=True).count() == 1
    assert printed_key(first) != printed_key(second)


def test_seed_demo_base_url():
    output = run("seed_demo", "--base-url", "https://gambit.example.com/")
    assert "curl -X POST https://gambit.example.com/api/v1/events/ \\" in output
