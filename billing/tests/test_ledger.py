"""The per-tenant payout ledger: append-only, balance derived, debits never overdraw."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from billing import selectors, services
from billing.errors import BillingError
from billing.models import LedgerEntry
from tests.support.race import race

FUNDING, TRANSFER, REVERSAL = LedgerEntry.Kind.FUNDING, LedgerEntry.Kind.TRANSFER, LedgerEntry.Kind.REVERSAL


@pytest.mark.django_db
def test_balance_is_the_sum_of_credits_and_debits_per_currency(tenant):
    services.ledger_post(kind=FUNDING, currency="USD", amount_minor=50_000, reference="checkout:cs_1")
    services.ledger_post(kind=TRANSFER, currency="USD", amount_minor=-12_345, reference="item:1")
    services.ledger_post(kind=REVERSAL, currency="USD", amount_minor=2_000, reference="reversal:trr_1")
    services.ledger_post(kind=FUNDING, currency="EUR", amount_minor=700, reference="checkout:cs_2")

    assert selectors.ledger_balance(currency="USD") == 50_000 - 12_345 + 2_000
    assert selectors.ledger_balances() == {"USD": 39_655, "EUR": 700}


@pytest.mark.django_db
def test_a_repeated_reference_posts_once(tenant):
    first, created = services.ledger_post(kind=FUNDING, currency="USD", amount_minor=1_000, reference="checkout:cs_1")
    again, created_again = services.ledger_post(
        kind=FUNDING, currency="USD", amount_minor=1_000, reference="checkout:cs_1"
    )

    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert selectors.ledger_balance(currency="USD") == 1_000


@pytest.mark.django_db
def test_a_debit_beyond_the_balance_is_refused_with_what_is_missing_and_writes_nothing(tenant):
    services.ledger_post(kind=FUNDING, currency="USD", amount_minor=10_000, reference="checkout:cs_1")

    with pytest.raises(BillingError) as refused:
        services.ledger_post(kind=TRANSFER, currency="USD", amount_minor=-10_001, reference="item:1")

    assert refused.value.code == "insufficient_funds"
    assert "100.00 USD" in refused.value.message and "0.01 USD more" in refused.value.message
    assert LedgerEntry.objects.count() == 1 and selectors.ledger_balance(currency="USD") == 10_000


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "amount"), [(TRANSFER, 500), (FUNDING, -500), (REVERSAL, 0)])
def test_entries_with_the_wrong_sign_or_zero_are_refused(tenant, kind, amount):
    with pytest.raises(BillingError):
        services.ledger_post(kind=kind, currency="USD", amount_minor=amount, reference="x:1")
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE billing_ledgerentry SET amount_minor = 1", "DELETE FROM billing_ledgerentry"]
)
def test_the_database_refuses_to_edit_or_delete_an_entry(tenant, statement):
    # given an entry in a tenant cloned from the template (the trigger must come with the clone)
    services.ledger_post(kind=FUNDING, currency="USD", amount_minor=1_000, reference="checkout:cs_1")

    # when someone edits the table directly, then PostgreSQL refuses
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert LedgerEntry.objects.get().amount_minor == 1_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_overdraw(make_tenant):
    # given 100.00 and eight workers each debiting 30.00 at the same moment
    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    services.ledger_post(kind=FUNDING, currency="USD", amount_minor=10_000, reference="checkout:cs_1")

    def debit(index: int) -> str:
        try:
            services.ledger_post(kind=TRANSFER, currency="USD", amount_minor=-3_000, reference=f"item:{index}")
        except BillingError as exc:
            return exc.code
        return "paid"

    outcomes = race(debit, times=8, tenant=provisioned.tenant).outcomes

    # then exactly three fit, the rest are refused, and the balance never went negative
    assert sorted(outcomes) == ["insufficient_funds"] * 5 + ["paid"] * 3
    assert selectors.ledger_balance(currency="USD") == 1_000
    connection.set_schema_to_public()
