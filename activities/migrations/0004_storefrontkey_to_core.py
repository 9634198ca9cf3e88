# The event's API client now points at core.StorefrontKey (same table); state only.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0003_experiments"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="client",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="core.storefrontkey",
                        verbose_name="API client",
                    ),
                ),
                migrations.DeleteModel(name="StorefrontKey"),
            ],
        ),
    ]
