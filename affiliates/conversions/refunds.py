"""Refunds and chargebacks: a conversion's revenue and commissions shrink in proportion.

Unpaid commissions shrink (to reversed at zero); a paid one gets a negative adjustment, approved
at once, that the next payout nets out. Each commission's new value is computed from its
original amount (rounded once), so several partial refunds never drift.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from affiliates import commissions, rollups
from affiliates.attribution import round_half_up
from affiliates.conversions.validate import money_error
from affiliates.errors import AffiliateError
from affiliates.models import Commission, Conversion, Refund
from core import money


def _part(value: int, kept: Decimal, whole: Decimal) -> int:
    """`value` scaled by kept / whole, rounded half-up once (0 for a conversion of 0)."""
    return int(round_half_up(Decimal(value) * kept / whole)) if whole else 0


def _amount_checked(conversion: Conversion, amount: Decimal | str | None) -> int:
    """The amount to refund in minor units: all that is left (None), or a positive amount up to it."""
    remaining = conversion.amount_minor - conversion.refunded_minor
    if amount is None:
        amount_minor = remaining
    else:
        try:
            amount_minor = money.to_minor(amount, conversion.currency)
        except money.MoneyError as exc:
            raise money_error(exc, "amount") from None
    if amount_minor <= 0:
        raise AffiliateError("amount_not_positive", "Refund a positive amount.", field="amount")
    if amount_minor > remaining:
        raise AffiliateError(
            "amount_exceeds_remaining",
            f"Only {money.format_minor(remaining, conversion.currency)} is left to refund.",
            field="amount",
        )
    return amount_minor


def _add(stats: rollups.StatDeltas, key: rollups.StatKey, column: str, value: int) -> None:
    row = stats.setdefault(key, {})
    row[column] = row.get(column, 0) + value


def _revenue_deltas(conversion: Conversion, amount_minor: int, stats: rollups.StatDeltas) -> None:
    """Each credit's share of the revenue, before and after this refund."""
    kept = Decimal(conversion.amount_minor - conversion.refunded_minor)
    whole = Decimal(conversion.amount_minor)
    day = conversion.occurred_at.date()
    for credit in conversion.credits.all():
        share_left = _part(credit.revenue_minor, kept, whole)
        previous_left = _part(credit.revenue_minor, kept + amount_minor, whole)
        _add(
            stats,
            (day, conversion.program_id, credit.affiliate_id, credit.link_id),
            "revenue_minor",
            share_left - previous_left,
        )


def _commission_refund(
    commission: Commission,
    *,
    conversion: Conversion,
    kind: str,
    reason: str,
    queued: bool,
    stats: rollups.StatDeltas,
) -> None:
    """Shrink one commission (a pending or approved one not in a payout) to what the refund
    leaves of its original amount, or correct a paid one with an adjustment."""
    target = _part(
        commission.original_minor,
        Decimal(conversion.amount_minor - conversion.refunded_minor),
        Decimal(conversion.amount_minor),
    )
    column = rollups.commission_column(commission.status)
    key = (conversion.occurred_at.date(), commission.program_id, commission.affiliate_id, commission.link_id)
    # A commission queued in a payout (`queued`) is treated as paid: the transfer is already
    # being sent for its amount, so the refund becomes an adjustment the next payout nets out.
    if commission.status in (Commission.Status.PENDING, Commission.Status.APPROVED) and not queued:
        delta = target - commission.amount_minor
        commission.amount_minor = target
        if column is not None:  # always, for a pending or approved one
            _add(stats, key, column, delta)
        commission.save(update_fields=["amount_minor"])
        if target == 0:
            # Nothing left to pay: reversed, through the one place status changes (its rollup
            # move is zero, the amount being zero already).
            commissions.commissions_transition(
                commissions=[commission],
                to=Commission.Status.REVERSED,
                cause=commissions.Cause.REFUND,
                when=timezone.now(),
                reason=f"{kind.capitalize()}: {reason}".strip(": "),
                rollup=stats,
            )
    elif commission.status == Commission.Status.PAID or queued:
        adjusted = commission.original_minor + (
            commission.derived.filter(kind=Commission.Kind.ADJUSTMENT).aggregate(s=Sum("amount_minor"))["s"] or 0
        )
        delta = target - adjusted
        if delta:
            Commission.objects.create(
                program_id=commission.program_id,
                conversion=conversion,
                affiliate_id=commission.affiliate_id,
                link_id=commission.link_id,
                kind=Commission.Kind.ADJUSTMENT,
                source=commission,
                base_minor=0,
                original_minor=delta,
                amount_minor=delta,
                currency=commission.currency,
                status=Commission.Status.APPROVED,
                approvable_at=timezone.now(),
                status_changed_at=timezone.now(),
                status_reason=f"{kind.capitalize()} after payout: {reason}".strip(": "),
            )
            _add(stats, key, "commission_approved_minor", delta)


def conversion_refund(
    *,
    conversion: Conversion,
    amount: Decimal | str | None,
    reason: str = "",
    kind: str = Refund.Kind.REFUND,
    external_id: str | None = None,
) -> Refund:
    """Refund all (amount None) or part of a conversion and reverse its commissions in
    proportion (see the module's docstring). A repeated `external_id` returns the first refund."""
    if external_id:
        found = Refund.objects.filter(conversion=conversion, external_id=external_id).first()
        if found:
            return found
    with transaction.atomic():
        conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
        amount_minor = _amount_checked(conversion, amount)
        try:
            with transaction.atomic():
                refund = Refund.objects.create(
                    conversion=conversion,
                    external_id=external_id or None,
                    kind=kind,
                    amount_minor=amount_minor,
                    reason=reason,
                )
        except IntegrityError:
            return Refund.objects.get(conversion=conversion, external_id=external_id)
        conversion.refunded_minor += amount_minor
        conversion.save(update_fields=["refunded_minor"])
        stats: rollups.StatDeltas = {}
        _revenue_deltas(conversion, amount_minor, stats)
        targets = list(
            conversion.commissions.select_for_update().exclude(kind=Commission.Kind.ADJUSTMENT).order_by("id")
        )
        # Read after the lock: a payout run takes commissions into an item only while holding it.
        in_payout = commissions.commission_ids_in_payout([c.pk for c in targets])
        for commission in targets:
            _commission_refund(
                commission,
                conversion=conversion,
                kind=kind,
                reason=reason,
                queued=commission.pk in in_payout,
                stats=stats,
            )
        rollups.stats_add(stats)
    return refund
