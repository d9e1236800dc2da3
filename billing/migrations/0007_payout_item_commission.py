# The link from a payout item to the commissions it pays moves from affiliates
# (`Commission.payout_item`) to billing, with every existing link copied; affiliates 0004 then
# removes the column. Backwards, the links are copied back into the column (re-added by
# reversing affiliates 0004 first) before the table goes.

import django.db.models.deletion
from django.db import migrations, models

COPY = (
    "INSERT INTO billing_payoutitemcommission (commission_id, payout_item_id) "
    "SELECT id, payout_item_id FROM affiliates_commission WHERE payout_item_id IS NOT NULL"
)
COPY_BACK = (
    "UPDATE affiliates_commission AS c SET payout_item_id = l.payout_item_id "
    "FROM billing_payoutitemcommission AS l WHERE l.commission_id = c.id"
)


class Migration(migrations.Migration):
    dependencies = [
        ("affiliates", "0003_program_payout_schedule"),
        ("billing", "0006_bank_payouts"),
    ]

    operations = [
        migrations.CreateModel(
            name="PayoutItemCommission",
            fields=[
                (
                    "commission",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="affiliates.commission",
                    ),
                ),
                (
                    "payout_item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="commission_links",
                        to="billing.payoutitem",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="payoutitem",
            name="commissions",
            field=models.ManyToManyField(
                help_text="The commissions this item pays (or is paying).",
                related_name="+",
                related_query_name="payout_item",
                through="billing.PayoutItemCommission",
                to="affiliates.commission",
            ),
        ),
        migrations.RunSQL(COPY, reverse_sql=COPY_BACK),
    ]
