"""The payout link's move from affiliates to billing (billing 0007 makes the link table and copies
every `Commission.payout_item` into it, affiliates 0004 drops that column), run backwards and
forwards again on a tenant schema with paid, queued, released and rolled-over commissions."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from affiliates.models import Commission
from billing import payouts
from billing.models import PayoutItemCommission
from billing.tests import factories as payout_factories

BEFORE_THE_MOVE = ("billing", "0006_bank_payouts")


def _executor() -> MigrationExecutor:
    # dj-stripe's models (public schema only) stand in for its long migration history, which
    # none of the migrations here depend on: the plan is made in seconds instead of a minute.
    with override_settings(MIGRATION_MODULES={"djstripe": None}):
        return MigrationExecutor(connection)


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def _columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


@pytest.mark.django_db
def test_the_payout_links_survive_the_migrations_backwards_and_forwards(double, shop):
    # given a paid item for two commissions, a queued item, a failed (released) one, a rolled-over one
    tenant, program = shop
    refused = payout_factories.owed(program, "700.00")
    payout_factories.onboarded(double.url, tenant, refused)
    paid = payout_factories.owed(program, "600.00")
    payout_factories.owed(program, "100.00", affiliate=paid)
    payout_factories.onboarded(double.url, tenant, paid)
    payout_factories.fund(100_000)
    # one thread: the items go in affiliate order, so the refused one's transfer is the one refused
    double.faults(
        {
            "method": "POST",
            "path": "/v1/transfers",
            "mode": "error",
            "status": 400,
            "code": "account_invalid",
            "times": 1,
        }
    )
    ran = payouts.payout_run_execute(run=payouts.payout_run_create(program=program), threads=1)
    double.faults()
    queued = payout_factories.owed(program, "900.00")
    payout_factories.onboarded(double.url, tenant, queued)
    payouts.payout_run_create(program=program, confirm=True)  # takes the refused one's too, again
    payout_factories.owed(program, "100.00")  # below the threshold: never linked
    assert list(ran.items.order_by("affiliate_id").values_list("status", flat=True)) == ["failed", "paid"]
    links = sorted(PayoutItemCommission.objects.values_list("commission_id", "payout_item_id"))
    assert len(links) == 4
    assert Commission.objects.count() == 5

    # when the schema goes back to before the move (the foreign keys checked now: PostgreSQL alters
    # no table with checks still deferred in the transaction, and the test runs in one)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    _executor().migrate([BEFORE_THE_MOVE])

    # then the commissions' column holds exactly those links, and the link table is gone
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, payout_item_id FROM affiliates_commission WHERE payout_item_id IS NOT NULL")
        assert sorted(cursor.fetchall()) == links
    assert "billing_payoutitemcommission" not in _tables()

    # and when it comes forward again
    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then the table has them all again, and the column is gone
    assert sorted(PayoutItemCommission.objects.values_list("commission_id", "payout_item_id")) == links
    assert "payout_item_id" not in _columns("affiliates_commission")
    assert sorted(Commission.objects.filter(payout_item__isnull=False).values_list("pk", flat=True)) == sorted(
        c for c, _ in links
    )
