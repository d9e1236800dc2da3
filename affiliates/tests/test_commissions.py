"""The commission lifecycle: the table of status moves and the rollup moves they imply (pure, no
database), then the one function every status change goes through, in a tenant schema."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from affiliates import commissions, conversions
from affiliates.commissions import Cause
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, Commission, Conversion, DailyStat, Program
from affiliates.tests import factories

PENDING, APPROVED, PAID, REJECTED, REVERSED = "pending", "approved", "paid", "rejected", "reversed"
STATUSES = [PENDING, APPROVED, PAID, REJECTED, REVERSED]
CAUSES = [Cause.STAFF, Cause.HOLD_PASSED, Cause.REFUND, Cause.PAYOUT_PAID, Cause.PAYOUT_REVERSED]

# Every move the platform makes today, and the way in that makes it; nothing else is allowed.
ALLOWED = {
    (PENDING, APPROVED, Cause.STAFF),  # staff approve
    (PENDING, APPROVED, Cause.HOLD_PASSED),  # the hold period passed
    (PENDING, REJECTED, Cause.STAFF),  # staff reject, or reject a flagged conversion
    (APPROVED, REJECTED, Cause.STAFF),
    (PENDING, REVERSED, Cause.STAFF),
    (APPROVED, REVERSED, Cause.STAFF),
    (PENDING, REVERSED, Cause.REFUND),  # refunded to zero before payout
    (APPROVED, REVERSED, Cause.REFUND),
    (PENDING, REVERSED, Cause.PAYOUT_REVERSED),  # an open adjustment of a commission whose payout came back
    (APPROVED, REVERSED, Cause.PAYOUT_REVERSED),
    (APPROVED, PAID, Cause.PAYOUT_PAID),  # only a payout marks paid
    (PAID, REVERSED, Cause.PAYOUT_REVERSED),  # only a payout's reversal takes a paid one back
}


@pytest.mark.parametrize(
    ("old", "new", "cause"), [(old, new, cause) for old in STATUSES for new in STATUSES for cause in CAUSES]
)
def test_the_table_allows_exactly_the_moves_made_today(old: str, new: str, cause: str) -> None:
    assert commissions.transition_allowed(old, new, cause=cause) is ((old, new, cause) in ALLOWED)


@pytest.mark.parametrize(
    ("cause", "records"),
    [
        (Cause.STAFF, True),
        (Cause.PAYOUT_REVERSED, True),
        (Cause.HOLD_PASSED, False),
        (Cause.REFUND, False),
        (Cause.PAYOUT_PAID, False),  # a paid commission still names who approved it
    ],
)
def test_only_decisions_and_payout_reversals_record_who(cause: str, records: bool) -> None:
    assert (cause in commissions.RECORDS_WHO) is records


DAY = timezone.now().date()
KEY = (DAY, 1, 2, 3)
OTHER = (DAY, 1, 4, None)


@pytest.mark.parametrize(
    ("moves", "deltas"),
    [
        (
            [(KEY, PENDING, APPROVED, 500)],
            {KEY: {"commission_pending_minor": -500, "commission_approved_minor": 500}},
        ),
        (
            [(KEY, APPROVED, PAID, 500)],
            {KEY: {"commission_approved_minor": -500, "commission_paid_minor": 500}},
        ),
        ([(KEY, PAID, REVERSED, 500)], {KEY: {"commission_paid_minor": -500}}),
        ([(KEY, PENDING, REJECTED, 500)], {KEY: {"commission_pending_minor": -500}}),
        ([(KEY, APPROVED, REVERSED, 500)], {KEY: {"commission_approved_minor": -500}}),
        (
            # a negative adjustment paid with its commission nets out of the same row
            [(KEY, APPROVED, PAID, 1000), (KEY, APPROVED, PAID, -400)],
            {KEY: {"commission_approved_minor": -600, "commission_paid_minor": 600}},
        ),
        (
            [(KEY, PENDING, APPROVED, 100), (OTHER, PENDING, APPROVED, 200)],
            {
                KEY: {"commission_pending_minor": -100, "commission_approved_minor": 100},
                OTHER: {"commission_pending_minor": -200, "commission_approved_minor": 200},
            },
        ),
        ([], {}),
    ],
    ids=["approve", "pay", "reverse-paid", "reject", "reverse-approved", "adjustment", "two-rows", "none"],
)
def test_rollup_deltas_move_each_amount_between_the_status_columns(
    moves: list[tuple[tuple, str, str, int]], deltas: dict[tuple, dict[str, int]]
) -> None:
    assert commissions.rollup_deltas(moves) == deltas


# --- in a tenant schema ------------------------------------------------------------------------


def _sale(program: Program, affiliate: Affiliate, amount: str = "50.00", **fields: str) -> Conversion:
    visitor = uuid.uuid4()
    factories.click(affiliate, visitor=visitor, at=timezone.now() - timedelta(hours=1))
    conversion, _ = conversions.conversion_record(
        program=program,
        external_id=f"order-{uuid.uuid4().hex[:8]}",
        event_type="purchase",
        amount=amount,
        currency=program.currency,
        visitor_id=visitor,
        **fields,
    )
    return conversion


def _owed(program: Program, count: int) -> tuple[Affiliate, list[Commission]]:
    """An affiliate with `count` pending commissions of 5.00 (10 % of 50.00), oldest first."""
    affiliate = factories.affiliate(program)
    factories.rule(program, percent="10")
    for _ in range(count):
        _sale(program, affiliate)
    return affiliate, list(Commission.objects.filter(affiliate=affiliate).select_related("conversion").order_by("id"))


def _columns(affiliate: Affiliate) -> tuple[int, int, int]:
    rows = DailyStat.objects.filter(affiliate=affiliate)
    return (
        sum(r.commission_pending_minor for r in rows),
        sum(r.commission_approved_minor for r in rows),
        sum(r.commission_paid_minor for r in rows),
    )


def _writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


@pytest.mark.django_db
def test_approving_what_is_due_takes_one_lock_one_update_and_one_rollup_upsert(program: Program) -> None:
    # given three pending commissions past their hold period
    affiliate, owed = _owed(program, 3)
    later = timezone.now() + timedelta(days=31)

    # when the due ones are approved
    with CaptureQueriesContext(connection) as queries:
        approved = commissions.commissions_approve_due(now=later)

    # then all three moved in three statements, not two per commission
    assert approved == 3
    assert _writes(queries) == ["SELECT", "UPDATE", "INSERT"]
    rows = Commission.objects.filter(pk__in=[c.pk for c in owed])
    assert set(rows.values_list("status", "status_changed_at", "status_reason", "status_changed_by")) == {
        (APPROVED, later, "Hold period passed.", None)
    }
    assert _columns(affiliate) == (0, 1500, 0)


@pytest.mark.django_db
def test_a_payout_marks_paid_in_bulk_and_keeps_who_approved(program: Program, staff: User) -> None:
    # given two commissions staff approved
    affiliate, owed = _owed(program, 2)
    for commission in owed:
        commissions.commission_set_status(commission=commission, status=APPROVED, by=staff, reason="ok")
    when = timezone.now()

    # when a payout records them paid
    with CaptureQueriesContext(connection) as queries:
        commissions.commissions_paid(commission_ids=[c.pk for c in owed], when=when)

    # then one locking read, one UPDATE and one rollup upsert for both
    assert _writes(queries) == ["SELECT", "UPDATE", "INSERT"]
    rows = Commission.objects.filter(pk__in=[c.pk for c in owed])
    assert set(rows.values_list("status", "paid_at", "status_changed_at", "status_reason", "status_changed_by")) == {
        (PAID, when, when, "Paid out.", staff.pk)
    }
    assert _columns(affiliate) == (0, 0, 1000)


@pytest.mark.django_db
def test_marking_paid_leaves_a_commission_that_is_not_approved_as_it_is(program: Program) -> None:
    _, [pending] = _owed(program, 1)

    commissions.commissions_paid(commission_ids=[pending.pk], when=timezone.now())

    pending.refresh_from_db()
    assert (pending.status, pending.paid_at) == (PENDING, None)


@pytest.mark.django_db
def test_a_payout_reversal_reverses_the_paid_commission_and_its_open_adjustment(program: Program) -> None:
    # given a paid commission of 5.00 whose purchase was then half refunded (a -2.50 adjustment)
    affiliate, [commission] = _owed(program, 1)
    commissions.commission_set_status(commission=commission, status=APPROVED, by=None)
    commissions.commissions_paid(commission_ids=[commission.pk], when=timezone.now())
    conversions.conversion_refund(conversion=commission.conversion, amount="25.00", reason="half")
    [adjustment] = Commission.objects.filter(kind=Commission.Kind.ADJUSTMENT)
    assert (adjustment.amount_minor, adjustment.status, _columns(affiliate)) == (-250, APPROVED, (0, -250, 500))
    when = timezone.now()

    # when the payout's transfer comes back (Stripe's webhook: nobody)
    changed = commissions.commissions_reversed(commission_ids=[commission.pk], when=when, reason="Fraud")

    # then both are reversed, with who (nobody), when and why, and out of the rollup
    assert changed == 2
    rows = Commission.objects.filter(pk__in=[commission.pk, adjustment.pk])
    assert set(rows.values_list("status", "status_changed_at", "status_reason", "status_changed_by")) == {
        (REVERSED, when, "Fraud", None)
    }
    assert _columns(affiliate) == (0, 0, 0)


@pytest.mark.django_db
def test_a_move_one_of_the_set_may_not_make_writes_nothing(program: Program) -> None:
    # given one approved and one pending commission
    affiliate, [approved, pending] = _owed(program, 2)
    commissions.commission_set_status(commission=approved, status=APPROVED, by=None)
    approved = Commission.objects.select_related("conversion").get(pk=approved.pk)
    before = _columns(affiliate)

    # when both are to be marked paid
    with pytest.raises(AffiliateError) as raised:
        commissions.commissions_transition(
            commissions=[approved, pending], to=PAID, cause=Cause.PAYOUT_PAID, when=timezone.now(), reason="x"
        )

    # then the pending one is refused and neither changed
    assert (raised.value.code, raised.value.status) == ("invalid_transition", 409)
    assert dict(Commission.objects.filter(affiliate=affiliate).values_list("pk", "status")) == {
        approved.pk: APPROVED,
        pending.pk: PENDING,
    }
    assert _columns(affiliate) == before


@pytest.mark.django_db
def test_a_caller_with_its_own_rollup_upsert_gets_the_deltas_instead(program: Program) -> None:
    # given a pending commission (how the refund path reverses one it took to zero)
    affiliate, [commission] = _owed(program, 1)
    before = _columns(affiliate)
    rollup: dict[tuple, dict[str, int]] = {}

    with CaptureQueriesContext(connection) as queries:
        commissions.commissions_transition(
            commissions=[commission],
            to=REVERSED,
            cause=Cause.REFUND,
            when=timezone.now(),
            reason="Refund: all",
            rollup=rollup,
        )

    assert _writes(queries) == ["UPDATE"]
    key = (commission.conversion.occurred_at.date(), program.pk, affiliate.pk, commission.link_id)
    assert rollup == {key: {"commission_pending_minor": -500}}
    assert _columns(affiliate) == before
    assert commission.status == REVERSED  # the instance follows the row


@pytest.mark.django_db
def test_staff_decide_with_who_when_and_why(program: Program, staff: User) -> None:
    affiliate, [commission] = _owed(program, 1)
    when = timezone.now()

    decided = commissions.commission_set_status(
        commission=commission, status=REJECTED, by=staff, reason="  Duplicate order  ", when=when
    )

    assert (decided.status, decided.status_changed_by, decided.status_changed_at, decided.status_reason) == (
        REJECTED,
        staff,
        when,
        "Duplicate order",
    )
    decided.refresh_from_db()
    assert (decided.status, decided.status_changed_by_id, decided.status_reason) == (
        REJECTED,
        staff.pk,
        "Duplicate order",
    )
    assert _columns(affiliate) == (0, 0, 0)


@pytest.mark.parametrize(
    ("status", "reason", "code"),
    [
        (PAID, "", "invalid_transition"),  # only a payout marks paid
        (PENDING, "", "invalid_transition"),  # nothing goes back to pending... from approved
        (REJECTED, "  ", "reason_required"),
    ],
)
@pytest.mark.django_db
def test_staff_cannot_make_a_move_the_table_refuses_them(
    program: Program, staff: User, status: str, reason: str, code: str
) -> None:
    affiliate, [commission] = _owed(program, 1)
    commissions.commission_set_status(commission=commission, status=APPROVED, by=None)
    before = _columns(affiliate)

    with pytest.raises(AffiliateError) as raised:
        commissions.commission_set_status(commission=commission, status=status, by=staff, reason=reason)

    assert raised.value.code == code
    commission.refresh_from_db()
    assert (commission.status, commission.status_changed_by_id) == (APPROVED, None)
    assert _columns(affiliate) == before


@pytest.mark.django_db
def test_setting_the_status_a_commission_has_changes_nothing(program: Program, staff: User) -> None:
    _, [commission] = _owed(program, 1)

    with CaptureQueriesContext(connection) as queries:
        same = commissions.commission_set_status(commission=commission, status=PENDING, by=staff)

    assert (same.status, same.status_changed_by_id) == (PENDING, None)
    assert "UPDATE" not in _writes(queries)


@pytest.mark.django_db
def test_rejecting_a_flagged_conversion_rejects_its_held_commissions_with_the_reason(
    program: Program, staff: User
) -> None:
    # given a self-referral: flagged, its commission held for review
    affiliate = factories.affiliate(program, email="cheater@example.org")
    factories.rule(program)
    conversion = _sale(program, affiliate, customer_external_id="c1", customer_email="Cheater@example.org")
    assert conversion.review == Conversion.Review.FLAGGED

    # when staff reject it
    commissions.review_resolve(conversion=conversion, clear=False, by=staff, reason="Own purchase")

    # then its commission is rejected by them, with the reason, and no longer held
    [commission] = Commission.objects.filter(conversion=conversion)
    assert (commission.status, commission.held_for_review, commission.status_changed_by_id) == (
        REJECTED,
        False,
        staff.pk,
    )
    assert commission.status_reason == "Own purchase"
    assert _columns(affiliate) == (0, 0, 0)


@pytest.mark.django_db
def test_clearing_a_flagged_conversion_leaves_its_commissions_pending_for_approval(
    program: Program, staff: User
) -> None:
    affiliate = factories.affiliate(program, email="cheater@example.org")
    factories.rule(program)
    conversion = _sale(program, affiliate, customer_external_id="c1", customer_email="Cheater@example.org")

    commissions.review_resolve(conversion=conversion, clear=True, by=staff)

    [commission] = Commission.objects.filter(conversion=conversion)
    assert (commission.status, commission.held_for_review, commission.status_changed_by_id) == (PENDING, False, None)
