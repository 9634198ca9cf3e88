"""Issue 18 in a real browser, in English and in zh-Hans: the segment builder with a live count,
the dashboard and an activity's figures matching the database; screenshots at 1024, 1400 and
1920 px, and no page scrolling sideways at 1400 px."""

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from reversion.models import Version

from activities.admin.chain_diff import processor_label
from activities.engine.processors.grant_benefit import GrantBenefit
from activities.models import Activity, Chain, ChainRun, Channel, Grant
from activities.reason_labels import reason_label
from core.admin.condition_text import condition_text
from core.admin.sentences import sentence
from core.labels import PROPERTY_LABELS
from core.models import OperatorProfile
from segments.models import Order, OrderState, Segment
from tests.activities.test_operator_figures import busy_quiz
from tests.e2e.scenario import activity_on, login, quiz_template, role_user
from tests.segments.factories import CustomerFactory, TagFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = (1024, 1400, 1920)
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_PHRASE = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,})+\b")
SIDEWAYS = "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"


def at_widths(page, shot, name: str) -> None:
    """Screenshots at each width; at 1400 px the page must not scroll sideways."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        shot(page, f"{name}-{width}")
        if width == 1400:
            assert page.evaluate(SIDEWAYS) <= 0, f"{name} scrolls sideways at 1400 px"
    page.set_viewport_size({"width": 1400, "height": 1000})


def pick(row, name: str) -> None:
    """Choose a field in a condition row's picker by its rule name."""
    option = row.locator(f".gambit-field-pick option[data-name='{name}']")
    row.locator(".gambit-field-pick").select_option(option.get_attribute("value"))


def buyers() -> list:
    vip = TagFactory(code="vip", name="VIP")
    TagFactory(code="new", name="New")
    customers = [CustomerFactory(name=f"buyer{i}") for i in range(4)]
    now = timezone.now()
    for index, customer in enumerate(customers):
        customer.tag_set.add(vip)
        if index < 2:
            Order.objects.create(
                external_id=f"o{index}",
                customer=customer,
                amount="20.00",
                state=OrderState.PAID,
                placed_at=now - dt.timedelta(hours=1),
                paid_at=now - dt.timedelta(hours=1),
            )
    CustomerFactory(name="outsider")
    return customers


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_segment_builder_with_tags_an_order_window_and_a_live_count(new_page, shot, language):
    customers = buyers()
    role_user("Operator", "olivia")
    page = new_page(language)
    login(page, "olivia")
    page.goto("/admin/segments/segment/add/")
    assert page.locator("textarea[name=rule]").is_hidden()
    page.fill("#id_code", "vip-buyers")
    page.fill("#id_name", "VIP buyers")

    page.click(".gambit-add-condition")
    row = page.locator(".gambit-condition").nth(0)
    pick(row, "customer.tags")
    row.locator(".gambit-op").select_option("in")
    row.locator(".gambit-multi").select_option(["vip"])
    page.wait_for_selector(".gambit-count:has-text('4')")
    assert page.locator(".gambit-sample li").count() == 4

    page.click(".gambit-add-condition")
    row = page.locator(".gambit-condition").nth(1)
    pick(row, "customer.orders.paid_last_{n}d")
    row.locator(".gambit-field-window").fill("2")
    row.locator(".gambit-op").select_option("gte")
    row.locator("input.gambit-value").fill("1")
    page.wait_for_selector(".gambit-count:has-text('2')")
    assert page.locator(".gambit-sample li").all_inner_texts() == [str(c) for c in customers[:2]]
    at_widths(page, shot, f"segment-builder-{language}")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert Segment.objects.get(code="vip-buyers").rule == {
        "all": [
            {"field": "customer.tags", "op": "in", "value": ["vip"]},
            {"field": "customer.orders.paid_last_2d", "op": "gte", "value": 1},
        ]
    }
    # Reloaded, the builder shows the stored rule by label and counts it again.
    assert page.locator(".gambit-field-window").input_value() == "2"
    page.wait_for_selector(".gambit-count:has-text('2')")


CHART_DATA = """(selector) => Array.from(document.querySelectorAll(selector)).map(
  canvas => { const chart = Chart.getChart(canvas);
              return {labels: chart.data.labels, values: chart.data.datasets[0].data}; })"""


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_dashboard_and_figures_match_the_database(new_page, shot, language):
    activity = busy_quiz()
    role_user("Viewer", "vera")
    page = new_page(language)
    login(page, "vera")
    page.goto("/admin/")
    page.wait_for_selector("#gambit-dashboard[data-loaded='1']")
    [funnel] = page.evaluate(CHART_DATA, ".gambit-funnel canvas")
    assert funnel["values"] == [15, 14, 2, 2]
    runs = page.evaluate(CHART_DATA, "canvas[data-chart='runs']")[0]
    assert runs["values"][-1] == ChainRun.objects.count()
    at_widths(page, shot, f"dashboard-{language}")

    page.click(f".gambit-funnel-activity[data-activity='{activity.code}'] a")
    page.wait_for_selector("#gambit-figures[data-loaded='1']")
    charts = {
        name: page.evaluate(CHART_DATA, f"#gambit-figures canvas[data-chart='{name}']")[0]
        for name in (
            "funnel",
            "events_per_day",
            "participants_per_day",
            "grants_by_benefit",
            "rejections",
        )
    }
    assert charts["funnel"]["values"] == [15, 14, 2, 2]
    assert charts["events_per_day"]["values"][-1] == 15
    assert charts["participants_per_day"]["values"][-1] == 3
    assert charts["grants_by_benefit"]["values"] == [
        Grant.objects.filter(activity=activity).count()
    ]
    assert charts["rejections"]["values"] == [12, 1]
    with translation.override(language):
        expected = [sentence(reason_label(code)) for code in ("day_limit_reached", "rule_not_met")]
    assert charts["rejections"]["labels"] == expected
    if language == "en":
        assert expected == ["Daily limit reached", "The rule was not met"]
    at_widths(page, shot, f"figures-{language}")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_no_page_scrolls_sideways_at_1400(new_page, shot, language):
    activity = busy_quiz()
    customer = buyers()[0]
    role_user(None, "root")
    page = new_page(language)
    login(page, "root")
    chain = activity.template.chains.get()
    # The pages an operator works in: screenshots at each width, no sideways scroll at 1400 px.
    main = {
        "activity": f"/admin/activities/activity/{activity.pk}/change/",
        "chain-builder": f"/admin/activities/chain/{chain.pk}/change/",
        "segment-builder": "/admin/segments/segment/add/",
        "broadcast-form": "/admin/notifications/broadcast/add/",
        "figures": f"/admin/activities/activity/{activity.pk}/figures/",
        "customer": f"/admin/segments/customer/{customer.pk}/change/",
    }
    for name, url in main.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        at_widths(page, shot, f"{name}-{language}")
    # The customer page shows the customer's tags and orders.
    page.goto(main["customer"])
    assert page.locator(".field-tag_list .readonly").inner_text() == "VIP"
    assert page.locator(".field-recent_orders .readonly a").inner_text() == "o0"
    # The lists they pass through, at 1400 px.
    lists = {
        "activities": "/admin/activities/activity/",
        "template": f"/admin/activities/strategytemplate/{activity.template_id}/change/",
        "runs": "/admin/activities/chainrun/",
        "participations": "/admin/activities/participation/",
        "customers": "/admin/segments/customer/",
        "broadcasts": "/admin/notifications/broadcast/",
    }
    wide = {}
    for name, url in lists.items():
        page.goto(url)
        overflow = page.evaluate(SIDEWAYS)
        if overflow > 0:
            wide[name] = overflow
            shot(page, f"sideways-{name}-{language}")
    assert wide == {}
    # The chain builder at the narrowest supported width: nothing clipped or sideways.
    page.set_viewport_size({"width": 1024, "height": 900})
    page.goto(main["chain-builder"])
    assert page.evaluate(SIDEWAYS) <= 0
    # The activity runs, so its chain is read-only: still steps counted from 1, in words.
    processors = list(chain.steps.order_by("position").values_list("processor", flat=True))
    with translation.override(language):
        titles = [f"{n}. {processor_label(key)}" for n, key in enumerate(processors, 1)]
        rule = condition_text(chain.steps.get(position=0).config)
    assert page.locator("#steps-group h3 .inline_label").all_inner_texts() == titles
    steps = page.locator("#steps-group").inner_text()
    assert rule in steps
    assert "{" not in steps and "rule_check" not in steps


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_chain_condition_from_the_picker_errors_on_the_field_diff_and_revert(
    new_page, shot, language
):
    activity = activity_on(quiz_template())
    Channel.objects.filter(code="quiz.completed").update(
        payload_schema={"type": "object", "properties": {"score": {"type": "integer"}}}
    )
    chain = Chain.objects.get(template=activity.template)
    role_user(None, "root")
    page = new_page(language)
    login(page, "root")
    url = f"/admin/activities/chain/{chain.pk}/change/"
    page.goto(url)
    # The picker lists this activity's benefit balance; add "chance held >= 1" to the rule.
    page.click("#steps-0 .gambit-add-condition")
    row = page.locator("#steps-0 .gambit-condition").nth(1)
    pick(row, "participation.chance")
    row.locator(".gambit-op").select_option("gte")
    row.locator("input.gambit-value").fill("1")
    # An "is between" with a word and an empty end, and a counter name with spaces.
    page.click("#steps-0 .gambit-add-condition")
    row = page.locator("#steps-0 .gambit-condition").nth(2)
    pick(row, "event.")
    row.locator(".gambit-field-key").fill("day")
    row.locator(".gambit-op").select_option("between")
    row.locator(".gambit-low").fill("abc")
    page.fill('#steps-1 [data-path="key"]', "Check in Day!")
    page.click("input[name=_continue]")
    low_error = page.locator("#steps-0 .gambit-low + .gambit-error")
    key_error = page.locator('#steps-1 [data-path="key"] + .gambit-error')
    low_error.wait_for()
    assert "abc" in low_error.inner_text()
    assert "Check in Day!" in key_error.inner_text()
    assert "does not match" not in key_error.inner_text()
    if language == "en":
        assert key_error.inner_text().startswith("Counter name Check in Day! is not allowed")
    else:
        assert CJK.search(key_error.inner_text()), key_error.inner_text()
        assert CJK.search(low_error.inner_text()), low_error.inner_text()
        assert not ENGLISH_PHRASE.search(low_error.inner_text().replace("abc", ""))
    at_widths(page, shot, f"chain-errors-{language}")

    # Fix both, save; then change the quantity and read the diff.
    page.locator("#steps-0 .gambit-condition").nth(2).locator(".gambit-remove").click()
    page.fill('#steps-1 [data-path="key"]', "quiz")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    rule = chain.steps.get(position=0).config
    assert rule["all"][1] == {"field": "participation.chance", "op": "gte", "value": 1}
    page.fill('#steps-2 [data-path="quantity"]', "2")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    first, second = Version.objects.get_for_object(chain).order_by("pk")
    page.goto(
        f"/admin/activities/chain/{chain.pk}/history/compare/"
        f"?version_id1={first.pk}&version_id2={second.pk}"
    )
    diff = page.locator(".gambit-diff").inner_text()
    assert "1" in diff and "2" in diff
    with translation.override(language):
        step = sentence(_("step %(n)d (%(processor)s)") % {"n": 3, "processor": GrantBenefit.label})
        setting = str(PROPERTY_LABELS["quantity"])
    assert diff.startswith(step) and setting in diff, diff
    if language == "en":
        assert diff == "Step 3 (Grant a benefit): quantity from 1 to 2."
    at_widths(page, shot, f"chain-diff-{language}")
    page.click(f"a[href$='/history/{first.pk}/']")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert chain.steps.get(position=2).config["quantity"] == 1


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_export_and_import_an_activity_document(new_page, shot, language, tmp_path):
    activity = activity_on(quiz_template())
    role_user("Operator", "olivia")
    page = new_page(language)
    login(page, "olivia")
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    with page.expect_download() as download:
        page.click("a[data-action=export]")
    document = yaml.safe_load(Path(download.value.path()).read_text())
    assert document["code"] == activity.code
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**document, "code": "copy", "name": None}))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({**document, "code": "copy"}))
    page.goto("/admin/activities/activity/")
    page.click("a[data-action=import]")
    page.set_input_files("#id_file", str(bad))
    page.click("#gambit-import input[type=submit]")
    problems = page.locator("#gambit-import-problems")
    assert "name" in problems.inner_text()
    assert not Activity.objects.filter(code="copy").exists()
    at_widths(page, shot, f"import-problems-{language}")
    page.set_input_files("#id_file", str(good))
    page.click("#gambit-import input[type=submit]")
    page.wait_for_selector(".messagelist .success, #gambit-import-problems")
    assert page.locator("#gambit-import-problems").count() == 0, problems.inner_text()
    assert Activity.objects.get(code="copy").state == "draft"


def test_the_language_picked_in_the_header_is_kept_for_the_user(new_page, shot):
    user = role_user("Operator", "olivia")
    page = new_page("en")
    login(page, "olivia")
    with page.expect_navigation():
        page.select_option("#gambit-language-select", "zh-hans")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert OperatorProfile.objects.get(user=user).language == "zh-hans"
    # Another browser, its cookie still English: once logged in, the admin speaks Chinese.
    elsewhere = new_page("en")
    login(elsewhere, "olivia")
    assert elsewhere.locator("html").get_attribute("lang") == "zh-hans"
    assert elsewhere.locator("#gambit-language-select").input_value() == "zh-hans"
    shot(elsewhere, "kept-language")
    # Switching back is kept as well.
    with elsewhere.expect_navigation():
        elsewhere.select_option("#gambit-language-select", "en")
    assert OperatorProfile.objects.get(user=user).language == "en"
