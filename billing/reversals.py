"""Taking a paid payout back: a Stripe transfer reversal of the whole transfer (fraud, a payout
made in error), recorded exactly once however many callers (staff, retries, the webhook) see it.

Two steps, no transaction across the Stripe call (as for transfers, see billing/payouts.py):
1. ask: create the reversal with a key derived from the item's own idempotency key, so a retry
   after a crash, or a second staff click at the same moment, gets the same reversal back from
   Stripe. A reversal of "the rest of the transfer" can only succeed once anyway: once the key has
   expired (24 hours) Stripe refuses a second one as "already fully reversed", and the transfer
   as Stripe holds it is then recorded instead.
2. record (`reversal_record`, shared with the `transfer.reversed` webhook): under the item's lock,
   credit the ledger once per Stripe reversal (reference `reversal:<trr id>`, unique), and once
   the whole transfer is back, mark the item and its commissions reversed. Whoever comes second
   (the webhook after staff, or the other way round) finds the entries and the status in place
   and changes nothing.

A partial reversal made in Stripe's dashboard credits the ledger with what came back but leaves
the item and its commissions paid: which commissions it takes back is a decision for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from affiliates import commissions
from billing import gateway, services
from billing.errors import BillingError
from billing.models import LedgerEntry, PayoutItem

DEFAULT_REASON = "Reversed in Stripe."


@dataclass(frozen=True)
class Reversal:
    id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class TransferState:
    """What recording needs of a transfer, from the API's answer or a webhook's payload."""

    id: str
    amount_minor: int
    amount_reversed_minor: int
    currency: str
    reversals: tuple[Reversal, ...]

    @classmethod
    def of(cls, transfer: Mapping[str, Any]) -> TransferState:
        """`transfer`: the `data.object` of a transfer event, or a stripe.Transfer as a dict. A
        transfer embeds its first ten reversals; the rest are listed from Stripe."""
        embedded = transfer.get("reversals") or {}
        rows: list[Mapping[str, Any]] = list(embedded.get("data") or [])
        if embedded.get("has_more"):
            rows = [r.to_dict() for r in gateway.transfer_reversals_list(transfer["id"])]
        return cls(
            id=transfer["id"],
            amount_minor=int(transfer["amount"]),
            amount_reversed_minor=int(transfer.get("amount_reversed") or 0),
            currency=str(transfer["currency"]).upper(),
            reversals=tuple(Reversal(r["id"], int(r["amount"]), str(r["currency"]).upper()) for r in rows),
        )


def reversal_idempotency_key(item: PayoutItem) -> str:
    # Derived, not stored: the item's key is unique and never changes.
    return f"{item.idempotency_key}-reversal"


def payout_item_reverse(*, item_id: int, reason: str, by: User | None = None) -> PayoutItem:
    """Staff take a paid item back: the whole transfer is reversed at Stripe, the ledger credited,
    the item and its commissions marked reversed. Safe to call again (or twice at once): one
    reversal, one credit. Raises BillingError: `reason_required`, `not_found` (404),
    `not_paid` / `already_reversed` / `reversal_refused` (409), `stripe_unavailable` (503)."""
    reason = reason.strip()
    if not reason:
        raise BillingError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None:
            raise BillingError("not_found", "No such payout item.", status=404)
        if item.status == PayoutItem.Status.REVERSED:
            raise BillingError("already_reversed", "This payout was reversed already.", status=409)
        if item.status != PayoutItem.Status.PAID or not item.stripe_transfer_id:
            message = f"Only a paid payout can be reversed; this one is {item.status}."
            raise BillingError("not_paid", message, status=409)
        # Kept before asking Stripe, so that the webhook, if it records the reversal first, has it.
        item.reversal_reason = reason[:500]
        item.save(update_fields=["reversal_reason"])
    metadata = {"tenant": connection.tenant.schema_name, "run": str(item.run_id), "item": str(item.pk)}
    refused: gateway.GatewayError | None = None
    try:
        gateway.transfer_reversal_create(
            transfer_id=item.stripe_transfer_id,
            amount_minor=None,
            metadata=metadata,
            idempotency_key=reversal_idempotency_key(item),
        )
    except gateway.GatewayError as exc:
        if not exc.refused_request:
            raise _unavailable(exc) from exc
        refused = exc  # perhaps reversed already (a key that expired, the dashboard): look
    try:
        transfer = TransferState.of(gateway.transfer_retrieve(item.stripe_transfer_id).to_dict())
    except gateway.GatewayError as exc:
        raise _unavailable(exc) from exc
    if refused is not None and transfer.amount_reversed_minor < transfer.amount_minor:
        PayoutItem.objects.filter(pk=item.pk, status=PayoutItem.Status.PAID).update(reversal_reason="")
        raise BillingError("reversal_refused", f"Stripe refused the reversal: {refused.message}", status=409)
    item, _ = reversal_record(item_id=item.pk, transfer=transfer, by=by)
    return item


def _unavailable(exc: gateway.GatewayError) -> BillingError:
    # Nothing is recorded; the same call later sends the same key and records what Stripe did.
    return BillingError("stripe_unavailable", f"Stripe could not be reached or refused us: {exc.message}", status=503)


def reversal_record(*, item_id: int, transfer: TransferState, by: User | None = None) -> tuple[PayoutItem, bool]:
    """Record what Stripe says of the item's transfer: a ledger credit per reversal not credited
    yet and, once the whole transfer is back, the item and its commissions reversed. Idempotent;
    returns the item and whether anything changed. Run in the item's tenant schema; refuses a
    transfer that is not the item's (`transfer_mismatch`)."""
    changed = False
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update().get(pk=item_id)
        if item.stripe_transfer_id != transfer.id or transfer.currency != item.currency.upper():
            raise BillingError("transfer_mismatch", f"Transfer {transfer.id} is not this item's.", status=409)
        if sum(r.amount_minor for r in transfer.reversals) > item.amount_minor:
            raise BillingError("transfer_mismatch", f"Transfer {transfer.id} reversed more than it paid.", status=409)
        for reversal in transfer.reversals:
            _, created = services.ledger_post(
                kind=LedgerEntry.Kind.REVERSAL,
                currency=item.currency,
                amount_minor=reversal.amount_minor,
                reference=f"reversal:{reversal.id}",
                stripe_id=reversal.id,
                memo=f"Transfer {transfer.id} of payout item {item.pk} reversed",
            )
            changed |= created
        if item.status == PayoutItem.Status.PAID and transfer.amount_reversed_minor >= item.amount_minor:
            now = timezone.now()
            item.status, item.reversed_at = PayoutItem.Status.REVERSED, now
            item.reversal_reason = item.reversal_reason or DEFAULT_REASON
            item.save(update_fields=["status", "reversed_at", "reversal_reason"])
            commissions.commissions_reversed(
                commission_ids=list(
                    item.commission_links.order_by("commission_id").values_list("commission_id", flat=True)
                ),
                when=now,
                reason=item.reversal_reason,
                by=by,
            )
            changed = True
    return item, changed
