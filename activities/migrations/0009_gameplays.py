import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("activities", "0008_coupons")]

    operations = [
        migrations.CreateModel(
            name="Streak",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=64)),
                ("last_day", models.DateField(verbose_name="last day")),
                ("length", models.PositiveIntegerField(default=0, verbose_name="current streak")),
                ("best", models.PositiveIntegerField(default=0, verbose_name="longest streak")),
                ("days", models.PositiveIntegerField(default=0, verbose_name="days in total")),
                ("record", models.BooleanField(default=False)),
                (
                    "activity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="streaks",
                        to="activities.activity",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="streaks",
                        to="segments.customer",
                    ),
                ),
            ],
            options={"verbose_name": "streak", "verbose_name_plural": "streaks"},
        ),
        migrations.AddConstraint(
            model_name="streak",
            constraint=models.UniqueConstraint(
                fields=("activity", "customer", "key"), name="streak_unique_customer"
            ),
        ),
        migrations.AddField(
            model_name="strategytemplate",
            name="gameplay",
            field=models.CharField(blank=True, max_length=64, verbose_name="gameplay"),
        ),
        migrations.AddField(
            model_name="strategytemplate",
            name="gameplay_parameters",
            field=models.JSONField(blank=True, default=dict, verbose_name="gameplay parameters"),
        ),
    ]
