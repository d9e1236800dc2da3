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


class Cause:
    """Why commissions change status: each cause is one way in, and the table below says which
    moves it may make (a person may reject an approved commission; only a payout marks one paid)."""

    STAFF = "staff"  # a person decides: commission_set_status, review_resolve
    HOLD_PASSED = "hold_passed"  # commissions_approve_due
    REFUND = "refund"  # the conversion's refund took an unpaid commission to zero (affiliates.conversions)
    PAYOUT_PAID = "payout_paid"  # billing recorded the transfer that pays it
    PAYOUT_REVERSED = "payout_reversed"  # billing recorded the reversal of that transfer


_PENDING, _APPROVED, _PAID = Commission.Status.PENDING, Commission.Status.APPROVED, Commission.Status.PAID
_REJECTED, _REVERSED = Commission.Status.REJECTED, Commission.Status.REVERSED

# (from, to) -> the causes that may make that move. Rejected and reversed are final; nothing goes
# back to pending. A payout's reversal also reverses the open adjustments of the commissions it
# paid, which may still be pending or approved.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (_PENDING, _APPROVED): frozenset({Cause.STAFF, Cause.HOLD_PASSED}),
    (_PENDING, _REJECTED): frozenset({Cause.STAFF}),
    (_APPROVED, _REJECTED): frozenset({Cause.STAFF}),
    (_PENDING, _REVERSED): frozenset({Cause.STAFF, Cause.REFUND, Cause.PAYOUT_REVERSED}),
    (_APPROVED, _REVERSED): frozenset({Cause.STAFF, Cause.REFUND, Cause.PAYOUT_REVERSED}),
    (_APPROVED, _PAID): frozenset({Cause.PAYOUT_PAID}),
    (_PAID, _REVERSED): frozenset({Cause.PAYOUT_REVERSED}),
}

# Causes whose moves record who made them (`status_changed_by`, None for Stripe's webhook). The
# others leave it as it was: a commission paid out still names the person who approved it.
RECORDS_WHO: frozenset[str] = frozenset({Cause.STAFF, Cause.PAYOUT_REVERSED})


def transition_allowed(old: str, new: str, *, cause: str) -> bool:
    """Whether `cause` may move a commission from status `old` to `new`. Pure."""
    return cause in TRANSITIONS.get((old, new), frozenset())


def rollup_deltas(moves: list[tuple[tuple, str, str, int]]) -> dict[tuple, dict[str, int]]:
    """The daily rollup's pending/approved/paid changes for status moves, each given as (rollup
    key (day, program, affiliate, link), old status, new status, amount). Pure."""
    deltas: dict[tuple, dict[str, int]] = {}
    for key, old, new, amount in moves:
        old_column, new_column = rollups.commission_column(old), rollups.commission_column(new)
        if old_column == new_column:
            continue
        row = deltas.setdefault(key, {})
        if old_column:
            row[old_column] = row.get(old_column, 0) - amount
        if new_column:
            row[new_column] = row.get(new_column, 0) + amount
    return deltas


def commissions_transition(
    *,
    commissions: list[Commission],
    to: str,
    cause: str,
    when: datetime,
    reason: str,
    by: User | None = None,
    rollup: dict[tuple, dict[str, int]] | None = None,
) -> list[Commission]:
    """Every commission status change goes through here: status, when, why, who (for the causes
    in RECORDS_WHO), `paid_at` for a payout, and the daily rollup's move, for a whole set in
    one UPDATE and one rollup upsert. The commissions must be locked by the caller's transaction
    and come with their conversion loaded (the rollup's day is the conversion's). Raises
    `invalid_transition` (409), writing nothing, if any of them may not make the move.
    `rollup`: a caller with an upsert of its own (a refund) gets the deltas added to it instead.
    The instances are updated in place and returned."""
    for commission in commissions:
        if not transition_allowed(commission.status, to, cause=cause):
            raise AffiliateError(
                "invalid_transition", f"A {commission.status} commission cannot become {to}.", status=409
            )
    if not commissions:
        return commissions
    fields: dict[str, object] = {"status": to, "status_changed_at": when, "status_reason": reason}
    if cause in RECORDS_WHO:
        fields["status_changed_by"] = by
    if to == _PAID:
        fields["paid_at"] = when
    Commission.objects.filter(pk__in=[c.pk for c in commissions]).update(**fields)
    deltas = rollup_deltas([(_rollup_key(c), c.status, to, c.amount_minor) for c in commissions])
    for commission in commissions:
        for name, value in fields.items():
            setattr(commission, name, value)
    if rollup is None:
        rollups.stats_add(deltas)
    else:
        for key, row in deltas.items():
            into = rollup.setdefault(key, {})
            for column, delta in row.items():
                into[column] = into.get(column, 0) + delta
    return commissions


def _rollup_key(commission: Commission) -> tuple:
    return (
        commission.conversion.occurred_at.date(),
        commission.program_id,
        commission.affiliate_id,
        commission.link_id,
    )


def commission_ids_in_payout(commission_ids: list[int]) -> set[int]:
    """Which of these commissions a payout holds (reserved for an item not failed, or paid by
    one). Billing keeps that link; it is read here through its query name, with no import of
    billing. Read it after locking the commissions: a payout links only commissions it has
    locked, so the answer then holds until the caller's transaction ends."""
    if not commission_ids:
        return set()
    in_payout = Commission.objects.filter(pk__in=commission_ids, payout_item__isnull=False).order_by()
    return set(in_payout.values_list("pk", flat=True))


def commission_set_status(
    *, commission: Commission, status: str, by: User | None, reason: str = "", when: datetime | None = None
) -> Commission:
    """A person's decision on one commission: approve, reject (with a reason) or reverse.
    Refused while a payout holds it, and approval while its conversion waits for review."""
    with transaction.atomic():
        commission = Commission.objects.select_for_update().select_related("conversion").get(pk=commission.pk)
        if commission.status == status:
            return commission
        if commission_ids_in_payout([commission.pk]):
            raise AffiliateError("in_payout", "This commission is in a payout run; cancel the run first.", status=409)
        if not transition_allowed(commission.status, status, cause=Cause.STAFF):
            raise AffiliateError(
                "invalid_transition", f"A {commission.status} commission cannot become {status}.", status=409
            )
        if status == Commission.Status.APPROVED and commission.held_for_review:
            raise AffiliateError("held_for_review", "The conversion is waiting for review; clear it first.", status=409)
        if status == Commission.Status.REJECTED and not reason.strip():
            raise AffiliateError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
        commissions_transition(
            commissions=[commission],
            to=status,
            cause=Cause.STAFF,
            when=when or timezone.now(),
            reason=reason.strip(),
            by=by,
        )
    return commission


def commissions_approve_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Approve pending commissions whose hold period has passed, unless their conversion is
    held for review. Safe to run from several workers at once (SKIP LOCKED)."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Commission.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("conversion")
            .filter(status=Commission.Status.PENDING, held_for_review=False, approvable_at__lte=now)
            .exclude(amount_minor__lte=0, kind__in=[Commission.Kind.COMMISSION, Commission.Kind.SECOND_TIER])
            .order_by("approvable_at", "id")[:limit]
        )
        commissions_transition(
            commissions=due,
            to=Commission.Status.APPROVED,
            cause=Cause.HOLD_PASSED,
            when=now,
            reason="Hold period passed.",
        )
    return len(due)


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
        held = list(conversion.commissions.filter(held_for_review=True).values_list("pk", flat=True))
        Commission.objects.filter(pk__in=held).update(held_for_review=False)
        if not clear:
            _reject_all(held, by=by, reason=reason.strip())
    return conversion


def _reject_all(commission_ids: list[int], *, by: User, reason: str) -> None:
    """Staff's rejection of several commissions, checked one by one in the order given as
    `commission_set_status` checks one, then written in one go."""
    locked = {
        c.pk: c
        for c in Commission.objects.select_for_update(of=("self",))
        .select_related("conversion")
        .filter(pk__in=commission_ids)
        .order_by("id")
    }
    in_payout = commission_ids_in_payout(commission_ids)
    todo: list[Commission] = []
    for pk in commission_ids:
        commission = locked[pk]
        if commission.status == Commission.Status.REJECTED:
            continue
        if pk in in_payout:
            raise AffiliateError("in_payout", "This commission is in a payout run; cancel the run first.", status=409)
        if not transition_allowed(commission.status, Commission.Status.REJECTED, cause=Cause.STAFF):
            raise AffiliateError(
                "invalid_transition", f"A {commission.status} commission cannot become rejected.", status=409
            )
        todo.append(commission)
    commissions_transition(
        commissions=todo, to=Commission.Status.REJECTED, cause=Cause.STAFF, when=timezone.now(), reason=reason, by=by
    )


# --- what billing calls: reserve, release, mark paid, reverse -----------------------------
# Billing keeps which payout item pays which commission (its link table); affiliates keeps the
# commissions and their status. Every writer of a link holds the commissions' row locks, taken
# here in id order (the order refunds and payouts lock commissions in), so that a refund or a
# staff decision that holds one of them sees the link as it is.


def commissions_reserve(*, program_id: int) -> list[Commission]:
    """The program's approved commissions (and approved negative adjustments) that no payout
    holds, locked in id order until the caller's transaction ends, for a payout run that links
    them to its items in that transaction.

    A run that had to wait for another's locks gets those rows as its statement first saw them,
    links not included (taking a link leaves the commission's row as it was, so PostgreSQL does
    not look again), so the links are read again once the locks are held: the commissions the
    other run took are left out here, not refused by the link's primary key at insert."""
    locked = list(
        Commission.objects.select_for_update(of=("self",))
        .filter(program_id=program_id, status=Commission.Status.APPROVED, payout_item__isnull=True)
        .order_by("id")
    )
    taken = commission_ids_in_payout([c.pk for c in locked])
    return [c for c in locked if c.pk not in taken]


def commissions_lock(*, commission_ids: list[int]) -> list[Commission]:
    """These commissions, locked in id order until the caller's transaction ends: a payout about
    to send its items checks under the lock that they are still approved and add up."""
    return list(Commission.objects.select_for_update().filter(pk__in=commission_ids).order_by("id"))


def commissions_release(*, commission_ids: list[int]) -> list[int]:
    """A payout lets go of these commissions (its item failed or its run was cancelled): nothing
    about them changes (they stay approved and go to the next run), but they are locked while
    the caller removes the links, so that a refund or a staff decision waiting for one of them
    finds it free afterwards. Returns their ids."""
    return [c.pk for c in commissions_lock(commission_ids=commission_ids)]


def commissions_paid(*, commission_ids: list[int], when: datetime) -> None:
    """Approved commissions (and approved negative adjustments) a payout has just paid, locked
    here; called inside the payout's transaction. Any other status is left as it is."""
    # One UPDATE and one rollup upsert for all of them: a payout batch records a hundred items.
    locked = (
        Commission.objects.select_for_update(of=("self",))
        .select_related("conversion")
        .filter(pk__in=commission_ids)
        .order_by("id")
    )
    paid = [c for c in locked if c.status == Commission.Status.APPROVED]
    commissions_transition(commissions=paid, to=_PAID, cause=Cause.PAYOUT_PAID, when=when, reason="Paid out.")


def commissions_reversed(*, commission_ids: list[int], when: datetime, reason: str, by: User | None = None) -> int:
    """Paid commissions whose payout was taken back (a transfer reversal): they become reversed,
    and so do the open adjustments that would still correct them (a refund after payout would
    otherwise be deducted again from money the affiliate no longer has). Called inside the
    reversal's transaction, which has locked the payout item. Returns how many changed."""
    paid = Commission.objects.filter(pk__in=commission_ids, status=_PAID)
    adjustments = Commission.objects.filter(
        source_id__in=commission_ids,
        kind=Commission.Kind.ADJUSTMENT,
        status__in=[_PENDING, _APPROVED],
        payout_item__isnull=True,
    )
    targets = list((paid | adjustments).select_for_update(of=("self",)).select_related("conversion").order_by("id"))
    commissions_transition(
        commissions=targets, to=_REVERSED, cause=Cause.PAYOUT_REVERSED, when=when, reason=reason[:500], by=by
    )
    return len(targets)
