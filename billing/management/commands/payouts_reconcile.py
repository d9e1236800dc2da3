from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing import reconcile
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Compare every tenant's payout items and ledger with the transfers Stripe holds (or the local "
        "double); print each difference and exit 1 if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")

    def handle(self, *args, tenant=None, **options):
        tenants = Tenant.objects.filter(kind=Tenant.Kind.BUSINESS)
        if tenant:
            tenants = tenants.filter(slug=tenant)
        transfers = reconcile.stripe_transfers()
        count = 0
        for each in tenants.order_by("slug"):
            with tenant_context(each):
                for difference in reconcile.differences(transfers=transfers):
                    count += 1
                    self.stdout.write(
                        f"{each.slug}: {difference.kind} item={difference.item_id} "
                        f"transfer={difference.transfer_id}: {difference.detail}"
                    )
        self.stdout.write(f"{count} difference(s) across {tenants.count()} tenant(s), {len(transfers)} transfer(s).")
        if count:
            raise CommandError("payouts do not reconcile")
