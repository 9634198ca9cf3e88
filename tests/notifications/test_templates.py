"""Templates: unknown placeholders and template code refused at save, strict rendering,
preview for a customer and a test send."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from notifications import rendering
from notifications.models import NotificationTemplate
from notifications.services import templates as template_services
from segments.models import Customer
from tests.notifications.factories import NotificationTemplateFactory

pytestmark = pytest.mark.django_db


def problems(source: str) -> list[str]:
    return [str(problem) for problem in rendering.check_source(source, transactional=True)]


def test_unknown_placeholder_cannot_be_saved_and_the_error_names_it():
    template = NotificationTemplate(
        code="welcome",
        name="Welcome",
        channel="email",
        subject="Hi",
        body="Dear {{ customer.nmae }}, welcome.",
    )
    with pytest.raises(ValidationError) as raised:
        template.save()
    assert "customer.nmae" in str(raised.value.message_dict["body"])
    assert not NotificationTemplate.objects.filter(code="welcome").exists()


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("Hi {{ name }}", "{{ name }}"),
        ("Hi {{ customer }}", "{{ customer }}"),
        ("Hi {{ customer.attributes }}", "{{ customer.attributes }}"),
        ("Hi {{ broadcast.segment }}", "{{ broadcast.segment }}"),
        ("Hi {{ customer._meta }}", "{{ customer._meta }}"),
    ],
)
def test_each_unknown_placeholder_is_named(source, named):
    found = problems(source)
    assert len(found) == 1
    assert named in found[0]


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ customer.name.upper() }}",
        "{% for c in customer.attributes.tags %}{{ c }}{% endfor %}",
        "{% set x = 1 %}",
        "{{ customer.name|attr('__class__') }}",
        "{% include 'base.html' %}",
        "{{ lipsum }}",
        "{{ range(10) }}",
    ],
)
def test_template_code_is_refused(source):
    assert problems(source), source


def test_syntax_error_is_reported_with_its_line():
    found = problems("Hello\n{{ customer.name ")
    assert len(found) == 1
    assert "line 2" in found[0]


@pytest.mark.parametrize(
    "source",
    [
        "Dear {{ customer.name }}",
        "{{ customer.name|default('friend')|title }}",
        "{% if customer.level == 'gold' %}Gold{% else %}Hi{% endif %}",
        "{{ customer.attributes.city }} {{ customer.attributes['zip code'] }}",
        "{{ customer.birthday|date('%d %B') }}",
        "{{ event.score }} {{ vars.prize }} {{ activity.code }}",
    ],
)
def test_allowed_templates(source):
    assert problems(source) == []


def test_transactional_placeholders_are_refused_for_broadcasts():
    found = rendering.check_source("{{ event.score }}", transactional=False)
    assert len(found) == 1
    assert "event.score" in str(found[0])


def scope(**customer):
    return rendering.Scope({"customer": customer, "broadcast": {"name": "Spring"}})


def test_strict_rendering_names_the_missing_value():
    with pytest.raises(rendering.RenderError) as raised:
        rendering.render("Dear {{ customer.name }},", scope(name=""))
    assert str(raised.value) == "customer.name has no value."
    with pytest.raises(rendering.RenderError, match=r"customer\.attributes\.city has no value"):
        rendering.render("{{ customer.attributes.city }}", scope(attributes={}))


def test_rendering_with_values_and_fallbacks():
    data = scope(name="Ada", attributes={"items": "3 items", "keys": "k"})
    assert rendering.render("Dear {{ customer.name }}", data) == "Dear Ada"
    assert rendering.render("{{ customer.level|default('friend') }}", data) == "friend"
    # Keys that are dict method names are data, not methods.
    assert rendering.render("{{ customer.attributes.items }}", data) == "3 items"
    assert rendering.render("{% if customer.level is defined %}x{% endif %}", data) == ""


def test_model_save_checks_channel_requirements():
    template = NotificationTemplate(code="wx", name="wx", channel="wechat", body="hi")
    with pytest.raises(ValidationError) as raised:
        template.save()
    assert set(raised.value.message_dict) == {"provider_template_id", "fields"}
    template.provider_template_id = "TPL"
    template.fields = {"thing1": "{{ customer.name }}", "thing2": "{{ nope }}"}
    with pytest.raises(ValidationError) as raised:
        template.save()
    assert "fields.thing2" in raised.value.message_dict["fields"][0]


def test_admin_form_shows_the_unknown_placeholder_as_a_field_error(admin_client):
    response = admin_client.post(
        "/admin/notifications/notificationtemplate/add/",
        {
            "code": "promo",
            "name": "Promo",
            "channel": "email",
            "subject": "Hi {{ customer.name }}",
            "body": "Your code: {{ customer.coupon }}",
            "fields": "{}",
            "provider_template_id": "",
            "link": "",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "customer.coupon" in errors["body"][0]
    assert not NotificationTemplate.objects.filter(code="promo").exists()


def test_preview_and_test_send(settings):
    settings.NOTIFICATIONS_EMAIL = {
        **settings.NOTIFICATIONS_EMAIL,
        "BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    template = NotificationTemplateFactory(
        subject="Hi {{ customer.name }}", body="Your level: {{ customer.level }}"
    )
    ada = Customer.objects.create(external_id="ada", name="Ada", email="ada@example.test")
    shown = template_services.preview(template=template, customer=ada)
    assert shown.error == "customer.level has no value."
    ada.level = "gold"
    shown = template_services.preview(template=template, customer=ada)
    assert (shown.subject, shown.body, shown.address) == (
        "Hi Ada",
        "Your level: gold",
        "ada@example.test",
    )

    result = template_services.send_test_message(
        template=template, customer=ada, address="ops@example.test"
    )
    assert result.ok
    assert [m.to for m in mail.outbox] == [["ops@example.test"]]
    assert mail.outbox[0].subject == "Hi Ada"


def test_preview_page_renders_for_a_customer(admin_client):
    template = NotificationTemplateFactory(body="Hello {{ customer.name }}")
    Customer.objects.create(external_id="bob", name="Bob", email="bob@example.test")
    url = f"/admin/notifications/notificationtemplate/{template.pk}/preview/"
    response = admin_client.post(url, {"customer": "bob", "address": "", "event": ""})
    assert response.status_code == 200
    assert "Hello Bob" in response.content.decode()
