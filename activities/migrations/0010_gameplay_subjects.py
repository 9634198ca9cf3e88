import django.db.models.deletion
import django_fsm
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("activities", "0009_gameplays")]

    operations = [
        migrations.CreateModel(
            name="HelpRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=32, verbose_name="request code")),
                ("needed", models.PositiveSmallIntegerField(verbose_name="helpers needed")),
                ("helpers", models.PositiveSmallIntegerField(default=0, verbose_name="helpers")),
                (
                    "state",
                    django_fsm.FSMField(
                        choices=[
                            ("open", "open"),
                            ("fulfilled", "fulfilled"),
                            ("expired", "expired"),
                        ],
                        default="open",
                        max_length=50,
                        protected=True,
                        verbose_name="state",
                    ),
                ),
                ("expires_at", models.DateTimeField(verbose_name="expires at")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="opened at")),
                (
                    "closed_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="closed at"),
                ),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="help_requests",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
                (
                    "initiator",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="initiator",
                    ),
                ),
            ],
            options={
                "verbose_name": "help request",
                "verbose_name_plural": "help requests",
                "ordering": ["-created_at"],
            },
            bases=(django_fsm.FSMModelMixin, models.Model),
        ),
        migrations.CreateModel(
            name="Assist",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="helped at")),
                (
                    "helper",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="helper",
                    ),
                ),
                (
                    "initiator",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="initiator",
                    ),
                ),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assists",
                        to="activities.helprequest",
                        verbose_name="request",
                    ),
                ),
            ],
            options={
                "verbose_name": "assist",
                "verbose_name_plural": "assists",
                "ordering": ["created_at", "pk"],
            },
        ),
        migrations.CreateModel(
            name="Score",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("score", models.BigIntegerField(default=0, verbose_name="score")),
                ("reached_at", models.DateTimeField(verbose_name="reached at")),
                ("events", models.PositiveIntegerField(default=0, verbose_name="scored events")),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="scores",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="customer",
                    ),
                ),
            ],
            options={
                "verbose_name": "leaderboard score",
                "verbose_name_plural": "leaderboard scores",
            },
        ),
        migrations.CreateModel(
            name="ScoreBucket",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("level", models.PositiveSmallIntegerField(verbose_name="level")),
                ("block", models.BigIntegerField(verbose_name="block")),
                ("holders", models.IntegerField(default=0, verbose_name="customers")),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
            ],
            options={
                "verbose_name": "score bucket",
                "verbose_name_plural": "score buckets",
            },
        ),
        migrations.CreateModel(
            name="Settlement",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "settled_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="settled at"),
                ),
                ("result", models.JSONField(blank=True, default=dict, verbose_name="result")),
                (
                    "activity",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="settlement",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
            ],
            options={
                "verbose_name": "settlement",
                "verbose_name_plural": "settlements",
            },
        ),
        migrations.CreateModel(
            name="SubjectCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("candidate", "candidate"),
                            ("customer", "customer"),
                            ("team", "team"),
                            ("request", "help request"),
                        ],
                        max_length=16,
                        verbose_name="subject kind",
                    ),
                ),
                ("subject", models.CharField(max_length=128, verbose_name="subject")),
                ("key", models.CharField(max_length=64, verbose_name="counter")),
                ("count", models.BigIntegerField(default=0, verbose_name="count")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="subject_counters",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
            ],
            options={
                "verbose_name": "subject counter",
                "verbose_name_plural": "subject counters",
            },
        ),
        migrations.CreateModel(
            name="SubjectMark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("candidate", "candidate"),
                            ("customer", "customer"),
                            ("team", "team"),
                            ("request", "help request"),
                        ],
                        max_length=16,
                        verbose_name="subject kind",
                    ),
                ),
                ("subject", models.CharField(max_length=128, verbose_name="subject")),
                ("key", models.CharField(max_length=64, verbose_name="counter")),
                ("period", models.CharField(max_length=16, verbose_name="period")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="counted at")),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="customer",
                    ),
                ),
            ],
            options={
                "verbose_name": "subject mark",
                "verbose_name_plural": "subject marks",
            },
        ),
        migrations.CreateModel(
            name="Team",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=32, verbose_name="team code")),
                ("size", models.PositiveSmallIntegerField(verbose_name="size")),
                ("members", models.PositiveSmallIntegerField(default=1, verbose_name="members")),
                (
                    "state",
                    django_fsm.FSMField(
                        choices=[
                            ("forming", "forming"),
                            ("complete", "complete"),
                            ("expired", "expired"),
                        ],
                        default="forming",
                        max_length=50,
                        protected=True,
                        verbose_name="state",
                    ),
                ),
                ("expires_at", models.DateTimeField(verbose_name="expires at")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="opened at")),
                (
                    "closed_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="closed at"),
                ),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="teams",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
                (
                    "leader",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="leader",
                    ),
                ),
            ],
            options={
                "verbose_name": "team",
                "verbose_name_plural": "teams",
                "ordering": ["-created_at"],
            },
            bases=(django_fsm.FSMModelMixin, models.Model),
        ),
        migrations.CreateModel(
            name="TeamMember",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("open", models.BooleanField(default=True, verbose_name="in a forming team")),
                ("joined_at", models.DateTimeField(auto_now_add=True, verbose_name="joined at")),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="activities.activity",
                        verbose_name="activity",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="segments.customer",
                        verbose_name="customer",
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="activities.team",
                        verbose_name="team",
                    ),
                ),
            ],
            options={
                "verbose_name": "team member",
                "verbose_name_plural": "team members",
                "ordering": ["joined_at", "pk"],
            },
        ),
        migrations.AddIndex(
            model_name="helprequest",
            index=models.Index(
                condition=models.Q(("state", "open")),
                fields=["expires_at"],
                name="help_request_open_expiry_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="helprequest",
            constraint=models.UniqueConstraint(
                fields=("activity", "code"), name="help_request_unique_code"
            ),
        ),
        migrations.AddConstraint(
            model_name="helprequest",
            constraint=models.CheckConstraint(
                condition=models.Q(("helpers__lte", models.F("needed"))),
                name="help_request_not_over_needed",
            ),
        ),
        migrations.AddConstraint(
            model_name="helprequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "open")),
                fields=("activity", "initiator"),
                name="help_request_one_open",
            ),
        ),
        migrations.AddConstraint(
            model_name="assist",
            constraint=models.UniqueConstraint(
                fields=("request", "helper"), name="assist_once_per_helper"
            ),
        ),
        migrations.AddConstraint(
            model_name="assist",
            constraint=models.CheckConstraint(
                condition=models.Q(("helper", models.F("initiator")), _negated=True),
                name="assist_not_self",
            ),
        ),
        migrations.AddIndex(
            model_name="score",
            index=models.Index(
                models.F("activity"),
                models.OrderBy(models.F("score"), descending=True),
                models.F("reached_at"),
                models.F("customer"),
                name="score_rank_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="score",
            constraint=models.UniqueConstraint(
                fields=("activity", "customer"), name="score_unique_customer"
            ),
        ),
        migrations.AddConstraint(
            model_name="scorebucket",
            constraint=models.UniqueConstraint(
                fields=("activity", "level", "block"),
                include=("holders",),
                name="score_bucket_unique",
            ),
        ),
        migrations.AddIndex(
            model_name="subjectcounter",
            index=models.Index(
                models.F("activity"),
                models.F("kind"),
                models.F("key"),
                models.OrderBy(models.F("count"), descending=True),
                name="subject_counter_tally_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="subjectcounter",
            constraint=models.UniqueConstraint(
                fields=("activity", "kind", "subject", "key"), name="subject_counter_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="subjectcounter",
            constraint=models.CheckConstraint(
                condition=models.Q(("count__gte", 0)), name="subject_counter_not_negative"
            ),
        ),
        migrations.AddConstraint(
            model_name="subjectmark",
            constraint=models.UniqueConstraint(
                fields=("activity", "kind", "subject", "key", "actor", "period"),
                name="subject_mark_once_per_period",
            ),
        ),
        migrations.AddIndex(
            model_name="team",
            index=models.Index(
                condition=models.Q(("state", "forming")),
                fields=["expires_at"],
                name="team_forming_expiry_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="team",
            constraint=models.UniqueConstraint(
                fields=("activity", "code"), name="team_unique_code"
            ),
        ),
        migrations.AddConstraint(
            model_name="team",
            constraint=models.CheckConstraint(
                condition=models.Q(("members__lte", models.F("size"))), name="team_not_over_size"
            ),
        ),
        migrations.AddConstraint(
            model_name="teammember",
            constraint=models.UniqueConstraint(
                fields=("team", "customer"), name="team_member_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="teammember",
            constraint=models.UniqueConstraint(
                condition=models.Q(("open", True)),
                fields=("activity", "customer"),
                name="team_member_one_open_team",
            ),
        ),
    ]
