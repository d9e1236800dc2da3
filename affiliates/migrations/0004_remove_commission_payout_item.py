# The payout link lives in billing now (billing 0007 made its table and copied every link).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("affiliates", "0003_program_payout_schedule"),
        ("billing", "0007_payout_item_commission"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="commission",
            name="payout_item",
        ),
    ]
