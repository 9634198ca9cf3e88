import django.contrib.postgres.fields
import django.core.serializers.json
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("activities", "0006_webhook_calls_and_event_dead_letters")]

    operations = [
        migrations.CreateModel(
            name="JourneyVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("template_version", models.PositiveIntegerField()),
                ("requires_lock", models.BooleanField(default=True)),
                ("steps", models.JSONField(default=list)),
                (
                    "exit_channels",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.IntegerField(), default=list, size=None
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "journey version",
                "verbose_name_plural": "journey versions",
            },
        ),
        migrations.CreateModel(
            name="WaitingRun",
            fields=[
                (
                    "run",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="waiting",
                        serialize=False,
                        to="activities.chainrun",
                        verbose_name="run",
                    ),
                ),
                ("step", models.PositiveSmallIntegerField(verbose_name="waiting at step")),
                ("due_at", models.DateTimeField(verbose_name="resumes at")),
                (
                    "watching",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.IntegerField(), default=list, size=None
                    ),
                ),
                (
                    "match",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        encoder=django.core.serializers.json.DjangoJSONEncoder,
                    ),
                ),
                (
                    "vars",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        encoder=django.core.serializers.json.DjangoJSONEncoder,
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("waiting", "waiting"),
                            ("resumed", "resumed"),
                            ("cancelled", "cancelled"),
                        ],
                        default="waiting",
                        max_length=12,
                        verbose_name="state",
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=100, verbose_name="reason")),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, verbose_name="waiting since"),
                ),
                (
                    "finished_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="finished at"),
                ),
            ],
            options={
                "verbose_name": "waiting run",
                "verbose_name_plural": "waiting runs",
            },
        ),
        migrations.AlterField(
            model_name="chainrun",
            name="outcome",
            field=models.CharField(
                blank=True,
                choices=[
                    ("granted", "granted"),
                    ("completed", "completed without a grant"),
                    ("rejected", "rejected"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                    ("waiting", "waiting"),
                    ("cancelled", "cancelled"),
                ],
                max_length=16,
                verbose_name="outcome",
            ),
        ),
        migrations.AddField(
            model_name="journeyversion",
            name="channel",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="activities.channel",
            ),
        ),
        migrations.AddField(
            model_name="journeyversion",
            name="template",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="activities.strategytemplate",
            ),
        ),
        migrations.AddField(
            model_name="waitingrun",
            name="activity",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="waiting_runs",
                to="activities.activity",
                verbose_name="activity",
            ),
        ),
        migrations.AddField(
            model_name="waitingrun",
            name="arrived_event",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="activities.event",
            ),
        ),
        migrations.AddField(
            model_name="waitingrun",
            name="channel",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="activities.channel",
                verbose_name="waiting for event",
            ),
        ),
        migrations.AddField(
            model_name="waitingrun",
            name="customer",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="waiting_runs",
                to="segments.customer",
                verbose_name="customer",
            ),
        ),
        migrations.AddField(
            model_name="waitingrun",
            name="journey",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="activities.journeyversion",
            ),
        ),
        migrations.AddConstraint(
            model_name="journeyversion",
            constraint=models.UniqueConstraint(
                fields=("template", "channel", "template_version"), name="journey_unique_version"
            ),
        ),
        migrations.AddIndex(
            model_name="waitingrun",
            index=models.Index(
                condition=models.Q(("state", "waiting")), fields=["due_at"], name="wait_due_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="waitingrun",
            index=models.Index(
                condition=models.Q(("state", "waiting")),
                fields=["customer"],
                name="wait_customer_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="waitingrun",
            index=models.Index(
                condition=models.Q(("state", "waiting")),
                fields=["activity", "step"],
                name="wait_activity_step_idx",
            ),
        ),
    ]
