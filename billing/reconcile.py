"""Reconciliation: the tenant's payout items and ledger against the transfers Stripe holds.

Read-only. Every transfer the platform makes carries the tenant, run and item in its metadata,
so Stripe's list of transfers can be split by tenant and compared item by item: a paid item
must have exactly one transfer of its amount and destination, an unpaid one none; the ledger
must hold one debit for every item that reserved funds and one release for every failed item
that had reserved them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from billing import gateway
from billing.models import LedgerEntry, PayoutItem


@dataclass(frozen=True)
class Difference:
    kind: str
    detail: str
    item_id: int | None = None
    transfer_id: str | None = None


def stripe_transfers() -> list[Any]:
    """Every transfer at Stripe (or the double): list it once for all tenants."""
    return list(gateway.transfers_list())


def differences(*, transfers: Iterable[Any]) -> list[Difference]:
    """What does not agree in the current tenant's schema; `transfers`: from `stripe_transfers`."""
    schema = connection.schema_name
    by_item: dict[str, list[Any]] = defaultdict(list)
    for transfer in transfers:
        metadata = dict(transfer.metadata or {})
        if metadata.get("tenant") == schema:
            by_item[metadata.get("item", "")].append(transfer)
    ledger = {e.reference: e for e in LedgerEntry.objects.filter(reference__startswith="item")}
    found: list[Difference] = []
    for item in PayoutItem.objects.order_by("id"):
        at_stripe = by_item.pop(str(item.pk), [])
        found += _item_vs_stripe(item, at_stripe)
        found += _item_vs_ledger(item, ledger.get(f"item:{item.pk}"), ledger.get(f"item-release:{item.pk}"))
    for item_ref, orphans in by_item.items():
        for transfer in orphans:
            found.append(Difference("transfer_without_item", f"item {item_ref!r} does not exist", None, transfer.id))
    return found


def _item_vs_stripe(item: PayoutItem, at_stripe: list[Any]) -> list[Difference]:
    out = []
    if len(at_stripe) > 1:
        ids = ", ".join(t.id for t in at_stripe)
        out.append(Difference("duplicate_transfers", f"{len(at_stripe)} transfers: {ids}", item.pk))
    if item.status in (PayoutItem.Status.PAID, PayoutItem.Status.REVERSED):  # reversed: paid, then taken back
        if not at_stripe:
            out.append(Difference("paid_without_transfer", f"recorded {item.stripe_transfer_id}", item.pk))
        else:
            transfer = at_stripe[0]
            if transfer.id != item.stripe_transfer_id:
                out.append(
                    Difference("transfer_id_mismatch", f"recorded {item.stripe_transfer_id}", item.pk, transfer.id)
                )
            if (transfer.amount, transfer.currency, transfer.destination) != (
                item.amount_minor,
                item.currency.lower(),
                item.destination,
            ):
                out.append(
                    Difference(
                        "transfer_mismatch",
                        f"item {item.amount_minor} {item.currency} to {item.destination}; Stripe {transfer.amount} "
                        f"{transfer.currency} to {transfer.destination}",
                        item.pk,
                        transfer.id,
                    )
                )
    elif item.status == PayoutItem.Status.SENDING:
        pass  # in flight: its next attempt records whatever Stripe has
    elif at_stripe:
        out.append(Difference("transfer_for_unpaid_item", f"item is {item.status}", item.pk, at_stripe[0].id))
    return out


def _item_vs_ledger(item: PayoutItem, debit: LedgerEntry | None, release: LedgerEntry | None) -> list[Difference]:
    """Pending: nothing reserved. Sending, paid or reversed: one debit of its amount, no release
    (a reversal's credit is its own entry, `reversal:<id>`). Failed:
    nothing, or a debit and its release (it failed after reserving)."""
    debited = debit is not None and debit.amount_minor == -item.amount_minor
    released = release is not None and release.amount_minor == item.amount_minor
    if item.status == PayoutItem.Status.PENDING:
        ok = debit is None and release is None
    elif item.status in (PayoutItem.Status.SENDING, PayoutItem.Status.PAID, PayoutItem.Status.REVERSED):
        ok = debited and release is None
    else:
        ok = (debit is None and release is None) or (debited and released)
    if ok:
        return []
    debit_text = debit.amount_minor if debit else "none"
    release_text = release.amount_minor if release else "none"
    return [
        Difference(
            "ledger_mismatch",
            f"item {item.status} of {item.amount_minor}: debit {debit_text}, release {release_text}",
            item.pk,
        )
    ]
