"""The operator back-office for the activity engine, one module per model group."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_celery_beat import models as beat

from . import (  # noqa: F401  (registers)
    activities,
    channels,
    coupons,
    experiments,
    grants,
    journeys,
    runs,
    templates,
    webhooks,
)

# Beat's rows are derived from activity and broadcast states by the scheduling services, under
# row locks; a hand edit here would launch or end a campaign behind the state machine's back.
for model in (
    beat.PeriodicTask,
    beat.ClockedSchedule,
    beat.CrontabSchedule,
    beat.IntervalSchedule,
    beat.SolarSchedule,
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)

admin.site.site_header = _("Gambit back-office")
admin.site.site_title = _("Gambit")
admin.site.index_title = _("Dashboard")
# The storefront is another site; Gambit serves no public page for "View site" to open.
admin.site.site_url = None
