"""Every admin page renders in zh-Hans and in English with no untranslated operator-facing text.

The crawl opens every page of every registered admin (lists, add forms, change forms, history,
and Gambit's own pages) with a superuser. In zh-Hans, no visible text may be an English msgid of
the catalog, and no visible text may read as an English phrase (two or more English words):
data is created with Chinese names or single-token codes so that anything English is a label.
In English, no visible text may be Chinese except the data and the language's own name.
"""

import contextlib
import datetime as dt
import gettext
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from activities.definitions.gameplays import all_gameplays
from activities.models import Activity, ActivityState, ChainRun, Event, Grant
from core.models import StorefrontKey
from segments.models import Customer
from tests.e2e.scenario import activity_on, login, quiz_template, role_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CATALOG = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo"
# Text a page shows that is not a label: data the test created, and proper names.
# "score" is the key of the event payload build_data stores ({"score": 80}).
DATA = {"春季答题", "答题", "张三", "简体中文", "English", "Gambit", "score"}
ENGLISH_PHRASE = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,})+\b")
# Proper names that stay in English in Chinese text.
PROPER_NAMES = ("JSON Schema",)
# IANA timezone names in timezone pickers ("America/New York") are names, not labels.
ZONE_NAME = re.compile(r"^[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_ +-]+)+$")
CJK = re.compile(r"[\u4e00-\u9fff]")

VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    const skip = ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEXTAREA', 'PRE', 'CODE'];
    if (!parent || skip.includes(parent.tagName)) continue;
    // .selector: Django's permission chooser lists Permission.name rows (data Django stores in
    // English) with Django's own JS labels, outside any catalogue Gambit can extend.
    if (parent.closest('.empty-form, [hidden], template, .selector')) continue;
    const style = getComputedStyle(parent);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const text = node.textContent.trim();
    if (text) out.push(text);
  }
  const labelled = 'input[type=submit], input[type=button], [placeholder], [title]';
  document.querySelectorAll(labelled).forEach(el => {
    if (el.closest('.empty-form, .selector')) return;
    for (const attr of ['value', 'placeholder', 'title']) {
      const v = el.getAttribute(attr);
      const shown = attr !== 'value' || el.type === 'submit' || el.type === 'button';
      if (v && shown) out.push(v.trim());
    }
  });
  return out;
}"""


def english_msgids() -> set[str]:
    with CATALOG.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    return {
        msgid.strip()
        for msgid, msgstr in catalog._catalog.items()
        if isinstance(msgid, str)
        and msgid
        and msgstr
        and msgid != msgstr
        and re.search("[A-Za-z]{3}", msgid)
    }


def build_data() -> dict[str, str]:
    """One object of every kind, so that every change form has something to show."""
    template = quiz_template()
    template.name = "答题"
    template.save()
    activity = activity_on(template)
    Activity.objects.filter(pk=activity.pk).update(name="春季答题")
    running = activity_on(
        template, code="running-quiz", starts_at=timezone.now() - dt.timedelta(days=1)
    )
    Activity.objects.filter(pk=running.pk).update(state=ActivityState.RUNNING, name="春季答题")
    customer = Customer.objects.create(external_id="c-1", name="张三")
    channel = template.chains.get().channel
    event = Event.objects.create(
        idempotency_key="k-1",
        request_hash="",
        channel=channel,
        customer=customer,
        payload={"score": 80},
    )
    run = ChainRun.objects.create(
        event=event,
        activity=activity,
        customer=customer,
        outcome="granted",
        steps=[{"processor": "rule_check", "outcome": "passed", "ms": 0.1}],
        result={"balances": {"chance": 1}},
    )
    # A run stopped by the engine: its reason code must reach the operator as words.
    refused = Event.objects.create(
        idempotency_key="k-2",
        request_hash="",
        channel=channel,
        customer=customer,
        payload={"score": 80},
    )
    ChainRun.objects.create(
        event=refused,
        activity=activity,
        customer=customer,
        outcome="rejected",
        reason="day_limit_reached",
        steps=[
            {"processor": "rule_check", "outcome": "passed", "ms": 0.1},
            {
                "processor": "participation_limit",
                "outcome": "rejected",
                "reason": "day_limit_reached",
                "ms": 0.1,
            },
        ],
        result={},
    )
    Grant.objects.create(
        benefit=activity.benefits.get(),
        activity=activity,
        customer=customer,
        run=run,
        idempotency_key="g-1",
    )
    StorefrontKey.objects.create_key(name="shop")
    return {"activity": activity.pk, "running": running.pk, "template": template.pk}


def admin_urls(ids: dict[str, int], user) -> list[str]:
    request = RequestFactory().get("/admin/")
    request.user = user
    urls = ["/admin/"]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        name = f"admin:{meta.app_label}_{meta.model_name}"
        urls.append(reverse(f"{name}_changelist"))
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"{name}_add"))
        obj = model_admin.get_queryset(request).order_by("pk").first()
        if obj is not None:
            urls.append(reverse(f"{name}_change", args=[obj.pk]))
            with contextlib.suppress(NoReverseMatch):
                urls.append(reverse(f"{name}_history", args=[obj.pk]))
    urls += [
        reverse("admin:activities_activity_dry_run", args=[ids["activity"]]),
        reverse("admin:activities_activity_transition", args=[ids["running"], "end"]),
        reverse("admin:activities_activity_transition", args=[ids["running"], "pause"]),
        reverse("admin:activities_strategytemplate_duplicate", args=[ids["template"]]),
        reverse("admin:activities_activity_gameplays"),
        *(
            reverse("admin:activities_activity_gameplay_add", args=[gameplay.code])
            for gameplay in all_gameplays()
        ),
    ]
    return urls


def visible_texts(page, url: str) -> list[str]:
    response = page.goto(url)
    assert response.status == 200, url
    page.wait_for_load_state("networkidle")
    return page.evaluate(VISIBLE_TEXT)


def test_every_admin_page_in_chinese_and_english(new_page, shot):
    ids = build_data()
    root = role_user(None, "root")
    msgids = english_msgids()
    zh, en = new_page("zh-hans"), new_page("en")
    login(zh, "root")
    login(en, "root")
    untranslated: dict[str, set[str]] = {}
    chinese_in_english: dict[str, set[str]] = {}
    urls = admin_urls(ids, root)
    for url in urls:
        for text in visible_texts(zh, url):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            for line in lines:
                if line in DATA or ZONE_NAME.match(line):
                    continue
                prose = line
                for name in PROPER_NAMES:
                    prose = prose.replace(name, "")
                if line in msgids or ENGLISH_PHRASE.search(prose):
                    untranslated.setdefault(url, set()).add(line)
        for text in visible_texts(en, url):
            leftover = text
            for data in sorted(DATA, key=len, reverse=True):
                leftover = leftover.replace(data, "")
            if CJK.search(leftover):
                chinese_in_english.setdefault(url, set()).add(text)
    shot(zh.goto("/admin/") and zh, "zh-hans-dashboard")
    report = Path(__file__).resolve().parents[2] / "test-artifacts" / "untranslated.txt"
    report.write_text(
        "\n".join(f"{url}: {sorted(lines)}" for url, lines in sorted(untranslated.items()))
        + "\n--- Chinese on English pages\n"
        + "\n".join(f"{url}: {sorted(lines)}" for url, lines in sorted(chinese_in_english.items())),
        encoding="utf-8",
    )
    assert untranslated == {}
    assert chinese_in_english == {}
    assert len(urls) > 40
