from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("activities", "0004_storefrontkey_to_core"),
    ]

    operations = [
        migrations.AlterModelTable(name="storefrontkey", table=None),
    ]
