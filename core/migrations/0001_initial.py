# StorefrontKey moves from the activities app to the kernel without touching its rows: the model
# is created here in the migration state only, over the existing table, and activities 0004
# removes it from its own state. The table is renamed in 0002.
import core.models
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="activities", model="storefrontkey").update(
        app_label="core"
    )


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="core", model="storefrontkey").update(
        app_label="activities"
    )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("activities", "0003_experiments"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="StorefrontKey",
                    fields=[
                        ("id", models.CharField(editable=False, max_length=150, primary_key=True, serialize=False, unique=True)),
                        ("prefix", models.CharField(editable=False, max_length=8, unique=True)),
                        ("hashed_key", models.CharField(editable=False, max_length=150)),
                        ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("name", models.CharField(default=None, help_text="A free-form name for the API key. Need not be unique. 50 characters max.", max_length=50)),
                        ("revoked", models.BooleanField(blank=True, default=False, help_text="If the API key is revoked, clients cannot use it anymore. (This cannot be undone.)")),
                        ("expiry_date", models.DateTimeField(blank=True, help_text="Once API key expires, clients cannot use it anymore.", null=True, verbose_name="Expires")),
                        ("scopes", models.JSONField(default=core.models.default_scopes, verbose_name="scopes")),
                    ],
                    options={
                        "verbose_name": "storefront API key",
                        "verbose_name_plural": "storefront API keys",
                        "ordering": ("-created",),
                        "abstract": False,
                        "db_table": "activities_storefrontkey",
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
