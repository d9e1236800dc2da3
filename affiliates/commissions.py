"""The commission lifecycle: status changes, with their audit fields and rollup moves.

Which rule a credited share earns by, and how much, is `affiliates.rules`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from affiliates import rollups
from affiliates.errors import AffiliateError
from affiliates.models import Commission, Conversion

# --- lifecycle ------------------------------------------------------------------------------


def _move(commission: Commission, *, old_status: str, old_amount: int) -> None:
    """Keep the daily rollup's pending/approved/paid sums in step with one commission."""
    key = (commission.conversion.occurred_at.date(), commission.program_id, commission.affiliate_id, commission.link_id)
    deltas: dict[str, int] = {}
    old_col, new_col = rollups.commission_column(old_status), rollups.commission_column(commission.status)
    if old_col:
        deltas[old_col] = deltas.get(old_col, 0) - old_amount
    if new_col:
        deltas[new_col] = deltas.get(new_col, 0) + commission.amount_minor
    rollups.stats_add({key: deltas})


def commission_set_status(
    *, commission: Commission, status: str, by: User | None, reason: str = "", when: datetime | None = None
) -> Commission:
    allowed = {
        Commission.Status.APPROVED: {Commission.Status.PENDING},
        Commission.Status.REJECTED: {Commission.Status.PENDING, Commission.Status.APPROVED},
        Commission.Status.REVERSED: {Commission.Status.PENDING, Commission.Status.APPROVED},
    }
    with transaction.atomic():
        commission = Commission.objects.select_for_update().select_related("conversion").get(pk=commission.pk)
        if commission.status == status:
            return commission
        if commission.payout_item_id is not None:
            raise AffiliateError("in_payout", "This commission is in a payout run; cancel the run first.", status=409)
        if commission.status not in allowed.get(status, set()):
            raise AffiliateError(
                "invalid_transition", f"A {commission.status} commission cannot become {status}.", status=409
            )
        if status == Commission.Status.APPROVED and commission.held_for_review:
            raise AffiliateError("held_for_review", "The conversion is waiting for review; clear it first.", status=409)
        if status == Commission.Status.REJECTED and not reason.strip():
            raise AffiliateError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
        old_status = commission.status
        commission.status = status
        commission.status_changed_at = when or timezone.now()
        commission.status_changed_by = by
        commission.status_reason = reason.strip()
        commission.save(update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"])
        _move(commission, old_status=old_status, old_amount=commission.amount_minor)
    return commission


def commissions_approve_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Approve pending commissions whose hold period has passed, unless their conversion is
    held for review. Safe to run from several workers at once (SKIP LOCKED)."""
    now = now or timezone.now()
    approved = 0
    with transaction.atomic():
        due = list(
            Commission.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("conversion")
            .filter(status=Commission.Status.PENDING, held_for_review=False, approvable_at__lte=now)
            .exclude(amount_minor__lte=0, kind__in=[Commission.Kind.COMMISSION, Commission.Kind.SECOND_TIER])
            .order_by("approvable_at", "id")[:limit]
        )
        for commission in due:
            commission.status = Commission.Status.APPROVED
            commission.status_changed_at = now
            commission.status_reason = "Hold period passed."
            commission.save(update_fields=["status", "status_changed_at", "status_reason"])
            _move(commission, old_status=Commission.Status.PENDING, old_amount=commission.amount_minor)
            approved += 1
    return approved


def review_resolve(*, conversion: Conversion, clear: bool, by: User, reason: str = "") -> Conversion:
    """Staff decide a flagged conversion: cleared commissions go on to approval as usual;
    rejected ones are rejected with the reason."""
    with transaction.atomic():
        conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
        if conversion.review != Conversion.Review.FLAGGED:
            raise AffiliateError("not_flagged", "This conversion is not waiting for review.", status=409)
        if not clear and not reason.strip():
            raise AffiliateError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
        conversion.review = Conversion.Review.CLEARED if clear else Conversion.Review.REJECTED
        conversion.save(update_fields=["review"])
        held = list(conversion.commissions.filter(held_for_review=True))
        Commission.objects.filter(pk__in=[c.pk for c in held]).update(held_for_review=False)
        if not clear:
            for commission in held:
                commission.held_for_review = False
                commission_set_status(commission=commission, status=Commission.Status.REJECTED, by=by, reason=reason)
    return conversion


def commissions_paid(*, commission_ids: list[int], when: datetime) -> None:
    """Approved commissions (and approved negative adjustments) a payout has just paid. Called
    inside the payout's transaction, which has locked them."""
    # One UPDATE and one rollup upsert for all of them: a payout batch records a hundred items.
    paid = list(
        Commission.objects.select_related("conversion").filter(pk__in=commission_ids, status=Commission.Status.APPROVED)
    )
    if not paid:
        return
    Commission.objects.filter(pk__in=[c.pk for c in paid]).update(
        status=Commission.Status.PAID, paid_at=when, status_changed_at=when, status_reason="Paid out."
    )
    deltas: dict[tuple, dict[str, int]] = {}
    approved, paid_column = (
        rollups.commission_column(Commission.Status.APPROVED),
        rollups.commission_column(Commission.Status.PAID),
    )
    for commission in paid:
        key = (
            commission.conversion.occurred_at.date(),
            commission.program_id,
            commission.affiliate_id,
            commission.link_id,
        )
        row = deltas.setdefault(key, {approved: 0, paid_column: 0})
        row[approved] -= commission.amount_minor
        row[paid_column] += commission.amount_minor
    rollups.stats_add(deltas)


def commissions_reversed(*, commission_ids: list[int], when: datetime, reason: str, by: User | None = None) -> int:
    """Paid commissions whose payout was taken back (a transfer reversal): they become reversed,
    and so do the open adjustments that would still correct them (a refund after payout would
    otherwise be deducted again from money the affiliate no longer has). Called inside the
    reversal's transaction, which has locked the payout item. Returns how many changed."""
    changed = 0
    paid = Commission.objects.select_for_update(of=("self",)).select_related("conversion")
    adjustments = paid.filter(
        source_id__in=commission_ids,
        kind=Commission.Kind.ADJUSTMENT,
        status__in=[Commission.Status.PENDING, Commission.Status.APPROVED],
        payout_item__isnull=True,
    )
    targets = [*paid.filter(pk__in=commission_ids, status=Commission.Status.PAID).order_by("id"), *adjustments]
    for commission in targets:
        old_status = commission.status
        commission.status = Commission.Status.REVERSED
        commission.status_changed_at = when
        commission.status_changed_by = by
        commission.status_reason = reason[:500]
        commission.save(update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"])
        _move(commission, old_status=old_status, old_amount=commission.amount_minor)
        changed += 1
    return changed
