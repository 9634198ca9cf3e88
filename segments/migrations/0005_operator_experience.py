from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("segments", "0004_audience")]

    operations = [
        migrations.AlterModelOptions(
            name="customer",
            options={
                "permissions": [("import_customers", "Can import customers from CSV")],
                "verbose_name": "customer",
                "verbose_name_plural": "customers",
            },
        ),
    ]
