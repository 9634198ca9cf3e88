import django.core.validators
import django.db.models.deletion
import django_fsm
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("activities", "0007_journeys")]

    operations = [
        migrations.CreateModel(
            name="BenefitIssue",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "state",
                    django_fsm.FSMField(
                        choices=[
                            ("requested", "waiting for approval"),
                            ("approved", "approved, issuing"),
                            ("completed", "completed"),
                            ("cancelled", "cancelled"),
                        ],
                        default="requested",
                        max_length=50,
                        protected=True,
                        verbose_name="state",
                    ),
                ),
                (
                    "bypass",
                    models.CharField(blank=True, max_length=200, verbose_name="review bypassed by"),
                ),
                (
                    "audience",
                    models.PositiveIntegerField(default=0, verbose_name="audience when requested"),
                ),
                ("cursor", models.BigIntegerField(default=0, verbose_name="last customer handled")),
                ("issued", models.PositiveIntegerField(default=0, verbose_name="issued")),
                ("skipped", models.PositiveIntegerField(default=0, verbose_name="not issued")),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, verbose_name="requested at"),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
                (
                    "finished_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="finished at"),
                ),
            ],
            options={
                "verbose_name": "issue to a segment",
                "verbose_name_plural": "issues to segments",
                "ordering": ["-created_at", "-pk"],
                "permissions": [("approve_benefitissue", "Can approve issuing to a segment")],
            },
            bases=(django_fsm.ConcurrentTransitionMixin, django_fsm.FSMModelMixin, models.Model),
        ),
        migrations.CreateModel(
            name="CouponCode",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=64, unique=True, verbose_name="coupon code")),
                ("issued", models.BooleanField(default=False, verbose_name="issued")),
            ],
            options={
                "verbose_name": "pool code",
                "verbose_name_plural": "pool codes",
            },
        ),
        migrations.CreateModel(
            name="CouponRedemption",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "idempotency_key",
                    models.CharField(max_length=255, verbose_name="idempotency key"),
                ),
                ("action", models.CharField(max_length=16, verbose_name="action")),
                ("request", models.JSONField(default=dict, verbose_name="request")),
                ("status", models.PositiveSmallIntegerField(verbose_name="HTTP status")),
                ("response", models.JSONField(default=dict, verbose_name="response")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="at")),
            ],
            options={
                "verbose_name": "coupon redemption",
                "verbose_name_plural": "coupon redemptions",
                "ordering": ["-created_at", "-pk"],
            },
        ),
        migrations.CreateModel(
            name="IssueSkip",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("out_of_stock", "out of stock"),
                            ("budget_exhausted", "budget exhausted"),
                            ("already_held", "already holds one"),
                        ],
                        max_length=20,
                        verbose_name="outcome",
                    ),
                ),
            ],
            options={
                "verbose_name": "customer not issued",
                "verbose_name_plural": "customers not issued",
            },
        ),
        migrations.AddField(
            model_name="activity",
            name="coupons_follow_orders",
            field=models.BooleanField(
                default=True,
                help_text="A coupon of this activity named on an order is redeemed when the order is paid and released when it is cancelled.",
                verbose_name="coupons follow orders",
            ),
        ),
        migrations.AddField(
            model_name="benefit",
            name="code_length",
            field=models.PositiveSmallIntegerField(
                default=12,
                help_text="Random characters after the prefix (8 to 32).",
                validators=[
                    django.core.validators.MinValueValidator(8),
                    django.core.validators.MaxValueValidator(32),
                ],
                verbose_name="code length",
            ),
        ),
        migrations.AddField(
            model_name="benefit",
            name="code_prefix",
            field=models.CharField(
                blank=True,
                help_text="Put in front of every generated code, e.g. SPRING-.",
                max_length=16,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[A-Z0-9-]*$", "Use capital letters, digits and hyphens only."
                    )
                ],
                verbose_name="code prefix",
            ),
        ),
        migrations.AddField(
            model_name="benefit",
            name="code_source",
            field=models.CharField(
                choices=[
                    ("generated", "generated by Gambit"),
                    ("pool", "drawn from an uploaded pool"),
                ],
                default="generated",
                help_text="Generated codes are random and unguessable; a pool hands out uploaded codes, each once, and its remaining codes are the stock.",
                max_length=16,
                verbose_name="coupon codes",
            ),
        ),
        migrations.AddField(
            model_name="benefit",
            name="valid_days",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Counting the day of issue, ending at midnight in the activity's time zone (1 = until the end of the day of issue). With a fixed end too, the earlier wins.",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="valid for days",
            ),
        ),
        migrations.AddField(
            model_name="benefit",
            name="valid_from",
            field=models.DateTimeField(
                blank=True,
                help_text="Empty means from issue.",
                null=True,
                verbose_name="valid from",
            ),
        ),
        migrations.AddField(
            model_name="benefit",
            name="valid_until",
            field=models.DateTimeField(
                blank=True,
                help_text="A fixed last moment of use.",
                null=True,
                verbose_name="valid until",
            ),
        ),
        migrations.AddField(
            model_name="grant",
            name="code",
            field=models.CharField(
                blank=True, max_length=64, null=True, unique=True, verbose_name="coupon code"
            ),
        ),
        migrations.AddField(
            model_name="grant",
            name="order",
            field=models.CharField(blank=True, max_length=128, verbose_name="redeemed on order"),
        ),
        migrations.AddField(
            model_name="grant",
            name="redeemed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="redeemed at"),
        ),
        migrations.AddField(
            model_name="grant",
            name="valid_from",
            field=models.DateTimeField(blank=True, null=True, verbose_name="valid from"),
        ),
        migrations.AddField(
            model_name="grant",
            name="valid_until",
            field=models.DateTimeField(blank=True, null=True, verbose_name="valid until"),
        ),
        migrations.AddIndex(
            model_name="grant",
            index=models.Index(fields=["benefit", "customer"], name="grant_benefit_customer_idx"),
        ),
        migrations.AddIndex(
            model_name="grant",
            index=models.Index(
                condition=models.Q(("state", "issued"), ("valid_until__isnull", False)),
                fields=["valid_until"],
                name="grant_expiry_idx",
            ),
        ),
        migrations.AddField(
            model_name="benefitissue",
            name="activity",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="issues",
                to="activities.activity",
                verbose_name="activity",
            ),
        ),
        migrations.AddField(
            model_name="benefitissue",
            name="approved_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="approved by",
            ),
        ),
        migrations.AddField(
            model_name="benefitissue",
            name="benefit",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="issues",
                to="activities.benefit",
                verbose_name="benefit",
            ),
        ),
        migrations.AddField(
            model_name="benefitissue",
            name="notification_template",
            field=models.ForeignKey(
                blank=True,
                help_text="Optional: sent to each customer who gets a coupon, with their own code.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="notifications.notificationtemplate",
                verbose_name="notification",
            ),
        ),
        migrations.AddField(
            model_name="benefitissue",
            name="requested_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="requested by",
            ),
        ),
        migrations.AddField(
            model_name="benefitissue",
            name="segment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="segments.segment",
                verbose_name="segment",
            ),
        ),
        migrations.AddField(
            model_name="couponcode",
            name="benefit",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="pool_codes",
                to="activities.benefit",
                verbose_name="benefit",
            ),
        ),
        migrations.AddField(
            model_name="couponredemption",
            name="client",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="core.storefrontkey",
                verbose_name="API key",
            ),
        ),
        migrations.AddField(
            model_name="couponredemption",
            name="grant",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="redemptions",
                to="activities.grant",
                verbose_name="grant",
            ),
        ),
        migrations.AddField(
            model_name="issueskip",
            name="customer",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="segments.customer",
                verbose_name="customer",
            ),
        ),
        migrations.AddField(
            model_name="issueskip",
            name="issue",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="skips",
                to="activities.benefitissue",
                verbose_name="issue",
            ),
        ),
        migrations.AddIndex(
            model_name="couponcode",
            index=models.Index(
                condition=models.Q(("issued", False)),
                fields=["benefit", "id"],
                name="couponcode_free_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="couponredemption",
            constraint=models.UniqueConstraint(
                fields=("client", "idempotency_key"),
                name="couponredemption_unique_key",
                nulls_distinct=False,
            ),
        ),
        migrations.AddConstraint(
            model_name="issueskip",
            constraint=models.UniqueConstraint(
                fields=("issue", "customer"), name="issueskip_unique"
            ),
        ),
    ]
