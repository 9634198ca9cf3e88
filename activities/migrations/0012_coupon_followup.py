from django.db import migrations, models
from psycopg import sql


def count_issued_coupons_towards_limits(apps, schema_editor):
    """Coupons issued to segments before this migration did not move the benefit's
    per-customer counter that a chain's grant moves; count them now, once."""
    grant = apps.get_model("activities", "Grant")
    benefit = apps.get_model("activities", "Benefit")
    counter = apps.get_model("activities", "ParticipationCounter")

    def column(model, name):
        return sql.Identifier(model._meta.get_field(name).column)

    statement = sql.SQL(
        "INSERT INTO {counters} ({c_activity}, {c_scope}, {c_key}, {c_period}, {c_count})"
        " SELECT g.{g_activity}, 'c:' || g.{g_customer}, 'benefit:' || b.{b_code}, 'all',"
        " sum(g.{g_quantity}) FROM {grants} AS g JOIN {benefits} AS b ON b.id = g.{g_benefit}"
        " WHERE b.{b_limit} IS NOT NULL AND g.{g_key} LIKE %s"
        " GROUP BY g.{g_activity}, g.{g_customer}, b.{b_code}"
        " ON CONFLICT ({c_activity}, {c_scope}, {c_key}, {c_period})"
        " DO UPDATE SET {c_count} = {counters}.{c_count} + EXCLUDED.{c_count}"
    ).format(
        counters=sql.Identifier(counter._meta.db_table),
        grants=sql.Identifier(grant._meta.db_table),
        benefits=sql.Identifier(benefit._meta.db_table),
        c_activity=column(counter, "activity"),
        c_scope=column(counter, "scope"),
        c_key=column(counter, "key"),
        c_period=column(counter, "period"),
        c_count=column(counter, "count"),
        g_activity=column(grant, "activity"),
        g_customer=column(grant, "customer"),
        g_quantity=column(grant, "quantity"),
        g_benefit=column(grant, "benefit"),
        g_key=column(grant, "idempotency_key"),
        b_code=column(benefit, "code"),
        b_limit=column(benefit, "per_customer_limit"),
    )
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), ["issue:%"])


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0010_gameplay_subjects"),
    ]

    operations = [
        migrations.AlterField(
            model_name="issueskip",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("out_of_stock", "out of stock"),
                    ("budget_exhausted", "budget exhausted"),
                    ("already_held", "already holds one"),
                    ("limit_reached", "reached the limit per customer"),
                ],
                max_length=20,
                verbose_name="outcome",
            ),
        ),
        migrations.RunPython(count_issued_coupons_towards_limits, migrations.RunPython.noop),
    ]
