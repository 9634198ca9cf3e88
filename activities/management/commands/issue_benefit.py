"""`manage.py issue_benefit ACTIVITY BENEFIT --segment CODE [--notify TEMPLATE]`: one coupon (or
prize) per customer of a segment, through the same service as the admin. Review of the issue is
bypassed on record (the operator at the terminal is named); the activity itself must be approved.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from activities.models import Benefit
from activities.services import coupon_issue
from core.errors import GambitError
from notifications.models import NotificationTemplate
from segments.models import Segment

from ._output import command_error


class Command(BaseCommand):
    help = "Issue a benefit of an activity to every customer of a segment, exactly once each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("activity", help="activity code")
        parser.add_argument("benefit", help="benefit code within the activity")
        parser.add_argument("--segment", required=True, help="segment code")
        parser.add_argument("--notify", help="notification template code sent with each coupon")
        parser.add_argument("--page-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        benefit = (
            Benefit.objects.select_related("activity")
            .filter(activity__code=options["activity"], code=options["benefit"])
            .first()
        )
        if benefit is None:
            raise CommandError(
                f"Activity {options['activity']!r} has no benefit {options['benefit']!r}."
            )
        segment = Segment.objects.filter(code=options["segment"]).first()
        if segment is None:
            raise CommandError(f"There is no segment {options['segment']!r}.")
        template = None
        if options["notify"]:
            template = NotificationTemplate.objects.filter(code=options["notify"]).first()
            if template is None:
                raise CommandError(f"There is no notification template {options['notify']!r}.")
        try:
            issue = coupon_issue.request_issue(
                benefit=benefit, segment=segment, notification_template=template
            )
            coupon_issue.approve_issue(
                issue=issue, bypass=f"manage.py issue_benefit by {getpass.getuser()}", start=False
            )
        except GambitError as error:
            raise command_error(error) from error
        self.stdout.write(f"Issue {issue.pk}: {issue.audience} customers in {segment.code}.")
        while True:
            page = coupon_issue.issue_next_page(issue_id=issue.pk, page_size=options["page_size"])
            if page is None or page.done:
                break
            issue.refresh_from_db()
            self.stdout.write(f"  {issue.issued} issued, {issue.skipped} not issued")
        issue.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(
                f"Issue {issue.pk} {issue.state}: {issue.issued} issued, "
                f"{issue.skipped} not issued."
            )
        )
