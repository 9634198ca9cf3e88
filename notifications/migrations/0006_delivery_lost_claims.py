from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_drop_stale_index")]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="lost_claims",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text=(
                    "Times a sender took this message and stopped responding before it "
                    "reported back (a worker restarted or killed)."
                ),
                verbose_name="claims lost with their sender",
            ),
        ),
    ]
