"""Customers, conversions (with attribution, fraud checks and commissions) and refunds.

Run inside the tenant's schema. A conversion is recorded exactly once per external id (and per
`Idempotency-Key`): the unique index decides a race, and the loser returns the winner's row.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from affiliates import attribution, commissions, rollups, tracking
from affiliates.errors import AffiliateError
from affiliates.models import (
    Affiliate,
    Click,
    Commission,
    CommissionRule,
    Conversion,
    ConversionCredit,
    Coupon,
    Customer,
    CustomerVisitor,
    Program,
    Refund,
)
from core import money, sqlrows

BUILTIN_EVENTS = ("signup", "purchase", "subscription_payment")
MAX_AMOUNT_MINOR = 10**13  # a hundred billion in a two-decimal currency: beyond it, a client bug
MAX_TOUCHPOINTS = 200
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=3653)  # older is a client bug (and near year 1, date arithmetic overflows)


def _money_error(exc: money.MoneyError, field: str) -> AffiliateError:
    return AffiliateError(exc.code, exc.message, field=field)


def _visitor(value: str | uuid.UUID | None, field: str) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise AffiliateError("visitor_invalid", "Not a visitor id.", field=field) from None


def _approved_by_code(program: Program, code: str | None) -> Affiliate | None:
    if not code:
        return None
    return Affiliate.objects.filter(
        program=program, code=code.strip().lower(), status=Affiliate.Status.APPROVED
    ).first()


def _click_visitor(program: Program, click_id: str | None) -> uuid.UUID | None:
    cid = _click_id(click_id)
    if cid is None:
        return None
    return Click.objects.filter(pk=cid, program=program).values_list("visitor_id", flat=True).first()


# --- customers ------------------------------------------------------------------------------


def customer_upsert(
    *,
    program: Program,
    external_id: str,
    email: str = "",
    visitor_id: str | uuid.UUID | None = None,
    click_id: str | None = None,
    code: str | None = None,
) -> tuple[Customer, bool]:
    """Create or update the customer and bind the visitor (from the visitor id or the click id),
    so that later conversions, from any device, see that visitor's clicks."""
    visitor = _visitor(visitor_id, "visitor_id")
    tracking.clicks_flush()
    visitor = visitor or _click_visitor(program, click_id)
    referred_by = _approved_by_code(program, code)
    if code and referred_by is None:
        raise AffiliateError("code_unknown", "No approved affiliate of this program has that code.", field="code")
    with transaction.atomic():
        customer = _customer_locked(program=program, external_id=external_id, email=email.lower())
        created = customer.inserted
        changed = []
        if email and customer.email != email.lower():
            customer.email = email.lower()
            changed.append("email")
        if referred_by and customer.referred_by_id is None:
            customer.referred_by = referred_by
            changed.append("referred_by")
        if changed:
            customer.save(update_fields=changed)
        if visitor:
            CustomerVisitor.objects.bulk_create(
                [CustomerVisitor(customer=customer, visitor_id=visitor)], ignore_conflicts=True
            )
    return customer, created


# --- conversions ----------------------------------------------------------------------------


@dataclass
class _Attributed:
    source: str  # clicks | coupon | code | binding | none
    weights: dict[int, Decimal]
    touchpoints: list[dict[str, Any]]
    links: dict[int, int | None]  # affiliate -> link of its latest touchpoint


def conversion_record(
    *,
    program: Program,
    external_id: str,
    event_type: str,
    amount: Decimal | str,
    currency: str,
    customer_external_id: str | None = None,
    customer_email: str = "",
    product_ids: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    click_id: str | None = None,
    visitor_id: str | uuid.UUID | None = None,
    code: str | None = None,
    coupon: str | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    rules: list[CommissionRule] | None = None,
) -> tuple[Conversion, bool]:
    """Record a conversion, attribute it and create its commissions. Returns (conversion, created);
    a repeat of an external id or idempotency key returns the first conversion unchanged.
    `rules`: the program's active rules, if the caller has them (`commissions.rules_for`)."""
    try:
        currency = money.currency_clean(currency)
    except money.MoneyError as exc:
        raise _money_error(exc, "currency") from None
    if currency != program.currency:
        raise AffiliateError(
            "currency_mismatch", f"This program is in {program.currency}; send amounts in it.", field="currency"
        )
    try:
        amount_minor = money.to_minor(amount, currency)
    except money.MoneyError as exc:
        raise _money_error(exc, "amount") from None
    if amount_minor < 0:
        raise AffiliateError("amount_negative", "The amount cannot be negative; use a refund.", field="amount")
    if amount_minor > MAX_AMOUNT_MINOR:
        raise AffiliateError("amount_too_large", "The amount is implausibly large.", field="amount")
    if event_type not in BUILTIN_EVENTS and event_type not in program.custom_event_types:
        raise AffiliateError(
            "event_type_unknown",
            f"Use one of {[*BUILTIN_EVENTS, *program.custom_event_types]}.",
            field="event_type",
        )
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + CLOCK_SKEW:
        raise AffiliateError("occurred_in_future", "A conversion cannot happen in the future.", field="occurred_at")
    if occurred_at < now - MAX_AGE:
        raise AffiliateError("occurred_too_long_ago", "A conversion is at most 10 years old.", field="occurred_at")
    visitor = _visitor(visitor_id, "visitor_id")
    # Buffered clicks become rows first, so a conversion right behind its click still sees it.
    tracking.clicks_flush()
    hints = {
        k: v
        for k, v in {
            "click_id": click_id,
            "visitor_id": str(visitor) if visitor else None,
            "code": code,
            "coupon": coupon,
        }.items()
        if v
    }
    if rules is None:
        rules = commissions.rules_for(program.id)
    hinted_click = _click_id(click_id)
    try:
        with transaction.atomic(), sqlrows.prepared():  # one cursor for every statement
            customer, clicks, flooded, parties, prior = _load(
                program=program,
                customer_external_id=customer_external_id or None,
                customer_email=customer_email.lower(),
                occurred_at=occurred_at,
                visitor=visitor,
                click_id=hinted_click,
                count_prior=commissions.rules_count_prior(rules),
            )
            # Inserted once its attribution is known (in _attribute_and_commission): a repeated
            # external id or key fails there on the unique index, and no row is written twice.
            conversion = Conversion(
                program=program,
                external_id=external_id,
                idempotency_key=idempotency_key or None,
                event_type=event_type,
                amount_minor=amount_minor,
                currency=currency,
                customer=customer,
                product_ids=product_ids or [],
                metadata=metadata or {},
                hints=hints,
                occurred_at=occurred_at,
            )
            _attribute_and_commission(
                program=program,
                conversion=conversion,
                customer=customer,
                clicks=clicks,
                flooded=flooded,
                parties=parties,
                prior=prior,
                code=code,
                coupon=coupon,
                customer_email=customer_email.lower(),
                rules=rules,
            )
    except IntegrityError:
        # Lost a race for the same external id or key: the winner's row is committed now.
        existing = _existing(program, external_id, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return conversion, True


def _customer_locked(*, program: Program, external_id: str, email: str) -> Customer:
    """Create or fetch the customer in one statement that also locks its row: conversions of one
    customer run one at a time, because binding and "first purchase" read what the previous
    one wrote."""
    with sqlrows.prepared() as cursor:
        cursor.execute(_CUSTOMER_UPSERT, [program.id, external_id, email, timezone.now()], prepare=True)
        return _customer_from(cursor.fetchone())


def _customer_from(row: tuple) -> Customer:
    *values, inserted = row
    customer = Customer.from_db(connection.alias, _CUSTOMER_FIELDS, values)
    customer.inserted = inserted  # type: ignore[attr-defined]
    return customer


_CUSTOMER_FIELDS = [f.attname for f in Customer._meta.concrete_fields]
_CUSTOMER_UPSERT = (
    "INSERT INTO affiliates_customer (program_id, external_id, email, created_at) VALUES (%s, %s, %s, %s) "  # noqa: S608 (columns from the model)
    "ON CONFLICT (program_id, external_id) DO UPDATE "
    "SET email = COALESCE(NULLIF(affiliates_customer.email, ''), excluded.email) "
    # xmax is 0 only on a row this statement inserted: "created" without a second query.
    f"RETURNING {', '.join(f.column for f in Customer._meta.concrete_fields)}, (xmax = 0)"
)


def _existing(program: Program, external_id: str, idempotency_key: str | None) -> Conversion | None:
    query = Q(external_id=external_id)
    if idempotency_key:
        query |= Q(idempotency_key=idempotency_key)
    return Conversion.objects.filter(query, program=program).order_by("id").first()


class _Touch(NamedTuple):
    """A click considered for attribution, with what the fraud checks and second tier need of
    its affiliate."""

    id: uuid.UUID
    affiliate_id: int
    link_id: int | None
    created_at: datetime
    flagged: str
    is_self: bool


@dataclass(frozen=True)
class _Party:
    """A credited affiliate: its user's email (self-referral) and parent (second tier)."""

    id: int
    email: str
    parent_id: int | None
    parent_approved: bool


# Everything attribution reads, in one statement: the visitors (sent, behind the click id, and
# those already bound to the customer), the binding of new visitors to the customer, the
# touchpoints inside the window with their affiliates, and, only when a rule needs it, the
# customer's earlier conversions. Data-modifying CTEs run whether or not the SELECT reads them.
# It names the customer by external id, not row id, so that it can travel in one round trip
# with the customer's upsert (`_load`); being a statement of its own, it reads after the
# upsert has locked the customer, so it sees whatever an earlier conversion of the customer
# committed.
_CONTEXT_SQL = """
WITH given(v) AS (SELECT unnest(%(visitors)s::uuid[])),
hinted(v) AS (SELECT visitor_id FROM affiliates_click WHERE id = %(click)s::uuid AND program_id = %(program)s),
cust AS (SELECT id FROM affiliates_customer WHERE program_id = %(program)s AND external_id = %(customer)s::text),
known(v) AS (SELECT visitor_id FROM affiliates_customervisitor WHERE customer_id = (SELECT id FROM cust)),
bound AS (
    INSERT INTO affiliates_customervisitor (customer_id, visitor_id, created_at)
    SELECT cust.id, n.v, %(now)s
    FROM cust, (SELECT v FROM given UNION SELECT v FROM hinted EXCEPT SELECT v FROM known) n
    ON CONFLICT DO NOTHING
),
-- Visitor by visitor through the (visitor_id, created_at) index, whatever the estimates (OFFSET
-- 0 and MATERIALIZED keep the planner from flattening this): a prepared statement's generic
-- plan, on a young tenant's statistics, preferred reading every click of every affiliate.
clicks AS MATERIALIZED (
    SELECT c.* FROM (SELECT v FROM given UNION SELECT v FROM hinted UNION SELECT v FROM known) vis
    CROSS JOIN LATERAL (
        SELECT id, affiliate_id, link_id, created_at, flagged, is_self FROM affiliates_click
        WHERE visitor_id = vis.v AND created_at >= %(start)s AND created_at <= %(at)s AND program_id = %(program)s
        OFFSET 0
    ) c
),
touch AS (
    SELECT c.id, c.affiliate_id, c.link_id, c.created_at, c.flagged, c.is_self,
           u.email, a.parent_id, p.status = 'approved' AS parent_approved
    FROM clicks c
    JOIN affiliates_affiliate a ON a.id = c.affiliate_id AND a.status = 'approved'
    JOIN accounts_user u ON u.id = a.user_id
    LEFT JOIN affiliates_affiliate p ON p.id = a.parent_id
    ORDER BY c.created_at DESC
    LIMIT %(limit)s
)
SELECT 0, touch.*, NULL FROM touch
UNION ALL  -- last, also when no click qualifies: the customer's earlier conversions, if asked
SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, CASE WHEN %(count_prior)s THEN (
    SELECT count(*) FROM affiliates_conversion WHERE customer_id = (SELECT id FROM cust) AND occurred_at < %(at)s) END
ORDER BY 1, 5 DESC
"""


def _load(
    *,
    program: Program,
    customer_external_id: str | None,
    customer_email: str,
    occurred_at: datetime,
    visitor: uuid.UUID | None,
    click_id: uuid.UUID | None,
    count_prior: bool,
) -> tuple[Customer | None, list[_Touch], bool, dict[int, _Party], int]:
    """(the customer, created or found and locked; touchpoints newest first; whether flood-flagged
    clicks were among them; their affiliates; the customer's earlier conversions, 0 unless
    `count_prior`). The transaction's BEGIN, the upsert and the context go to PostgreSQL in one
    pipeline: one round trip instead of three."""
    params = {
        "visitors": [visitor] if visitor else [],
        "click": click_id,
        "program": program.id,
        "customer": customer_external_id,
        "now": timezone.now(),
        "start": occurred_at - timedelta(days=program.cookie_window_days),
        "at": occurred_at,
        "limit": MAX_TOUCHPOINTS,
        "count_prior": count_prior and customer_external_id is not None,
    }
    with sqlrows.prepared() as cursor, psycopg.Cursor(cursor.connection) as context:
        with cursor.connection.pipeline():
            if customer_external_id:
                cursor.execute(
                    _CUSTOMER_UPSERT, [program.id, customer_external_id, customer_email, params["now"]], prepare=True
                )
            context.execute(_CONTEXT_SQL, params, prepare=True)
        customer = _customer_from(cursor.fetchone()) if customer_external_id else None
        rows = context.fetchall()
    prior = rows[-1][-1] or 0
    clicks = [_Touch(*row[1:7]) for row in rows[:-1]]
    parties = {row[2]: _Party(row[2], row[7], row[8], bool(row[9])) for row in rows[:-1]}
    flooded = any(c.flagged for c in clicks)
    return customer, [c for c in clicks if not c.flagged], flooded, parties, prior


def _parties(ids: set[int]) -> dict[int, _Party]:
    rows = Affiliate.objects.filter(id__in=ids).values_list("id", "user__email", "parent_id", "parent__status")
    return {i: _Party(i, email, parent, status == Affiliate.Status.APPROVED) for i, email, parent, status in rows}


def _attribute(
    *,
    program: Program,
    conversion: Conversion,
    customer: Customer | None,
    clicks: list[_Touch],
    coupon_affiliate: Affiliate | None,
    code_affiliate: Affiliate | None,
) -> _Attributed:
    bound = customer.affiliate if customer and customer.affiliate_id else None
    if bound is not None and bound.status != Affiliate.Status.APPROVED:
        bound = None
    if conversion.event_type == "subscription_payment" and bound is not None:
        return _Attributed("binding", {bound.id: Decimal(1)}, [], {bound.id: None})
    by_click: _Attributed | None = None
    if clicks:
        touchpoints = [
            attribution.Touchpoint(ref=str(c.id), affiliate_id=c.affiliate_id, at=c.created_at) for c in clicks
        ]
        credit = attribution.credit(
            touchpoints=touchpoints,
            model=program.attribution_model,
            converted_at=conversion.occurred_at,
            half_life_days=program.time_decay_half_life_days,
        )
        assert credit is not None
        links: dict[int, int | None] = {}
        for click in sorted(clicks, key=lambda c: c.created_at):
            links[click.affiliate_id] = click.link_id
        by_click = _Attributed(
            "clicks",
            {aff: w for aff, w in credit.affiliate_weights.items() if w > 0},
            [
                {"click_id": tp.ref, "affiliate_id": tp.affiliate_id, "at": tp.at.isoformat(), "weight": str(w)}
                for tp, w in credit.touchpoint_weights
            ],
            links,
        )
    by_coupon = _Attributed("coupon", {coupon_affiliate.id: Decimal(1)}, [], {}) if coupon_affiliate else None
    ordered = [by_coupon, by_click] if program.precedence == Program.Precedence.COUPON else [by_click, by_coupon]
    for candidate in ordered:
        if candidate is not None:
            return candidate
    if code_affiliate is not None:
        return _Attributed("code", {code_affiliate.id: Decimal(1)}, [], {})
    if bound is not None:
        return _Attributed("binding", {bound.id: Decimal(1)}, [], {})
    return _Attributed("none", {}, [], {})


def _attribute_and_commission(
    *,
    program: Program,
    conversion: Conversion,
    customer: Customer | None,
    clicks: list[_Touch],
    flooded: bool,
    parties: dict[int, _Party],
    prior: int,
    code: str | None,
    coupon: str | None,
    customer_email: str,
    rules: list[CommissionRule],
) -> None:
    """Attribute the conversion (from what `_load` read), then write it with its credits,
    commissions, the customer's binding and the rollups in one statement (`_write`); a coupon, a
    code or a binding costs a query more. With `_load` and the commit, three round trips to
    PostgreSQL: this is the conversion API's hot path, measured by `make bench NAME=conversions`."""
    coupon_row = None
    if coupon:
        coupon_row = (
            Coupon.objects.select_related("affiliate__user")
            .filter(
                code=coupon.strip().upper(),
                is_active=True,
                affiliate__program=program,
                affiliate__status=Affiliate.Status.APPROVED,
            )
            .first()
        )
    code_affiliate = _approved_by_code(program, code) or (customer.referred_by if customer else None)
    result = _attribute(
        program=program,
        conversion=conversion,
        customer=customer,
        clicks=clicks,
        coupon_affiliate=coupon_row.affiliate if coupon_row else None,
        code_affiliate=code_affiliate,
    )
    missing = set(result.weights) - set(parties)
    if missing:
        parties.update(_parties(missing))
    credited = {a: parties[a] for a in result.weights}

    # Fraud checks: any flag sends the conversion to the review queue.
    flags: list[str] = []
    emails = {p.email.lower() for p in credited.values()}
    # Merchants often use the email as the customer id, so that is compared too.
    customer_keys = {customer_email, customer.email, customer.external_id.lower()} if customer else {customer_email}
    if (customer_keys - {""}) & emails:
        flags.append("self_referral")
    if any(c.is_self and c.affiliate_id in credited for c in clicks):
        flags.append("self_click")
    if result.source == "coupon" and coupon_row and customer_email == coupon_row.affiliate.user.email.lower():
        flags.append("own_coupon")
    if flooded:
        flags.append("click_flood")
    flags = sorted(set(flags))

    shares = (
        attribution.split_minor(amount_minor=conversion.amount_minor, weights=result.weights) if result.weights else {}
    )
    notes: list[dict[str, Any]] = []
    conversion.attribution = {
        "model": program.attribution_model if result.source == "clicks" else None,
        "precedence": program.precedence,
        "source": result.source,
        "window_days": program.cookie_window_days,
        "touchpoints": result.touchpoints,
        "weights": {str(a): str(w) for a, w in result.weights.items()},
        "notes": notes,
    }
    if result.source == "none":
        notes.append(
            {"affiliate_id": None, "reason": "no_touchpoint", "message": "No qualifying click, coupon or code."}
        )
    conversion.flags = flags
    conversion.review = Conversion.Review.FLAGGED if flags else Conversion.Review.NONE

    day = conversion.occurred_at.date()
    stats: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ctx = commissions.rule_context(conversion=conversion, customer=customer, rules=rules, prior=prior)
    approvable_at = conversion.occurred_at + timedelta(days=program.hold_days)
    credits: list[ConversionCredit] = []
    firsts: list[Commission] = []
    for affiliate_id, share in shares.items():
        link_id = result.links.get(affiliate_id)
        credits.append(
            ConversionCredit(
                conversion=conversion,
                affiliate_id=affiliate_id,
                link_id=link_id,
                weight=result.weights[affiliate_id],
                revenue_minor=share,
                occurred_at=conversion.occurred_at,
            )
        )
        key = (day, program.id, affiliate_id, link_id)
        stats[key]["conversions"] += 1
        stats[key]["revenue_minor"] += share
        rule = commissions.rule_choose(rules, affiliate_id=affiliate_id, ctx=ctx)
        if rule is None:
            notes.append(
                {
                    "affiliate_id": affiliate_id,
                    "reason": "no_matching_rule",
                    "message": "No active commission rule matches this conversion.",
                }
            )
            continue
        amount = commissions.commission_amount(
            rule,
            base_minor=share,
            weight=result.weights[affiliate_id],
            affiliate_id=affiliate_id,
            before=conversion.occurred_at,
        )
        firsts.append(
            Commission(
                program=program,
                conversion=conversion,
                affiliate_id=affiliate_id,
                link_id=link_id,
                rule=rule,
                base_minor=share,
                original_minor=amount,
                amount_minor=amount,
                currency=conversion.currency,
                held_for_review=bool(flags),
                approvable_at=approvable_at,
            )
        )
        stats[key]["commission_pending_minor"] += amount
    seconds: list[Commission] = []
    for first in firsts:
        party = credited[first.affiliate_id]
        if party.parent_id is not None and program.second_tier_percent > 0 and party.parent_approved:
            amount = int(attribution.round_half_up(Decimal(first.amount_minor) * program.second_tier_percent / 100))
            seconds.append(
                Commission(
                    program=program,
                    conversion=conversion,
                    affiliate_id=party.parent_id,
                    rule=None,
                    kind=Commission.Kind.SECOND_TIER,
                    source=first,
                    base_minor=first.amount_minor,
                    original_minor=amount,
                    amount_minor=amount,
                    currency=conversion.currency,
                    held_for_review=bool(flags),
                    approvable_at=approvable_at,
                )
            )
            stats[(day, program.id, party.parent_id, None)]["commission_pending_minor"] += amount

    customer_changes: dict[str, Any] = {}
    if customer is not None:
        if customer.first_conversion_at is None:
            customer_changes["first_conversion_at"] = conversion.occurred_at
        if customer.affiliate_id is None and shares:
            # The largest share wins the customer; ties go to the later touchpoint's affiliate
            # (dicts keep chronological order of first appearance, so take the last maximum).
            top, best = 0, Decimal(-1)
            for affiliate_id, weight in result.weights.items():
                if weight >= best:
                    top, best = affiliate_id, weight
            customer_changes.update(affiliate_id=top, bound_at=timezone.now())
        for name, value in customer_changes.items():
            setattr(customer, name, value)
    _write(
        conversion=conversion,
        credits=credits,
        firsts=firsts,
        seconds=seconds,
        customer=customer,
        customer_changes=customer_changes,
        stats=stats,
    )
    conversion._prefetched_objects_cache = {"credits": credits}  # the response needs no re-read


def _click_id(click_id: str | None) -> uuid.UUID | None:
    if not click_id:
        return None
    try:
        return uuid.UUID(str(click_id))
    except ValueError:
        raise AffiliateError("click_invalid", "Not a click id.", field="click_id") from None


def _write(
    *,
    conversion: Conversion,
    credits: list[ConversionCredit],
    firsts: list[Commission],
    seconds: list[Commission],
    customer: Customer | None,
    customer_changes: dict[str, Any],
    stats: dict[tuple, dict[str, int]],
) -> None:
    """Every write of a conversion in one statement: the conversion, its credits, commissions
    (a second-tier one points at its first-tier one, found by affiliate), the customer's
    binding and the rollups. A repeated external id or key fails the whole statement on the
    unique index (IntegrityError), so nothing of it is written. Rows are built from the model
    instances with Django's own field adaptation, so every column is covered and typed as
    the ORM would write it."""
    parts: list[str] = []
    params: list[Any] = []

    def cte(name: str, sql: str, values: list[Any]) -> None:
        parts.append(f"{name} AS ({sql})")
        params.extend(values)

    conversion_ref = "(SELECT id FROM conv)"
    cte("conv", *sqlrows.insert([conversion], returning="id"))
    if credits:
        cte("credit", *sqlrows.insert(credits, expressions={"conversion_id": conversion_ref}))
    if firsts:
        cte(
            "first",
            *sqlrows.insert(firsts, expressions={"conversion_id": conversion_ref}, returning="id, affiliate_id"),
        )
    if seconds:
        source = {id(s): ("(SELECT id FROM first WHERE affiliate_id = %s)", [s.source.affiliate_id]) for s in seconds}
        cte(
            "second",
            *sqlrows.insert(
                seconds, expressions={"conversion_id": conversion_ref, "source_id": lambda obj: source[id(obj)]}
            ),
        )
    if customer is not None and customer_changes:
        cte("cust", *sqlrows.update(customer, list(customer_changes)))
    stat_sql = rollups.stats_add_sql(stats)
    if stat_sql is not None:
        cte("stat", *stat_sql)
    with sqlrows.prepared() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT id FROM conv", params, prepare=True)  # noqa: S608
        conversion.pk = cursor.fetchone()[0]
    conversion._state.adding = False
    conversion._state.db = connection.alias


# --- refunds --------------------------------------------------------------------------------


def conversion_refund(
    *,
    conversion: Conversion,
    amount: Decimal | str | None,
    reason: str = "",
    kind: str = Refund.Kind.REFUND,
    external_id: str | None = None,
) -> Refund:
    """Refund all (amount None) or part of a conversion and reverse its commissions in
    proportion. Unpaid commissions shrink (to reversed at zero); a paid one gets a negative
    adjustment, approved at once, that the next payout nets out. Each commission's new value is
    computed from its original amount (rounded once), so several partial refunds never drift."""
    if external_id:
        found = Refund.objects.filter(conversion=conversion, external_id=external_id).first()
        if found:
            return found
    with transaction.atomic():
        conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
        remaining = conversion.amount_minor - conversion.refunded_minor
        if amount is None:
            amount_minor = remaining
        else:
            try:
                amount_minor = money.to_minor(amount, conversion.currency)
            except money.MoneyError as exc:
                raise _money_error(exc, "amount") from None
        if amount_minor <= 0:
            raise AffiliateError("amount_not_positive", "Refund a positive amount.", field="amount")
        if amount_minor > remaining:
            raise AffiliateError(
                "amount_exceeds_remaining",
                f"Only {money.format_minor(remaining, conversion.currency)} is left to refund.",
                field="amount",
            )
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
        kept = Decimal(conversion.amount_minor - conversion.refunded_minor)
        whole = Decimal(conversion.amount_minor)
        day = conversion.occurred_at.date()
        stats: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for credit in conversion.credits.all():
            share_left = int(attribution.round_half_up(Decimal(credit.revenue_minor) * kept / whole)) if whole else 0
            previous_left = (
                int(attribution.round_half_up(Decimal(credit.revenue_minor) * (kept + amount_minor) / whole))
                if whole
                else 0
            )
            stats[(day, conversion.program_id, credit.affiliate_id, credit.link_id)]["revenue_minor"] += (
                share_left - previous_left
            )
        targets = conversion.commissions.select_for_update().exclude(kind=Commission.Kind.ADJUSTMENT)
        for commission in targets.order_by("id"):
            target = int(attribution.round_half_up(Decimal(commission.original_minor) * kept / whole)) if whole else 0
            column = rollups.commission_column(commission.status)
            key = (day, commission.program_id, commission.affiliate_id, commission.link_id)
            # A commission queued in a payout is treated as paid: the transfer is already being
            # sent for its amount, so the refund becomes an adjustment the next payout nets out.
            queued = commission.payout_item_id is not None
            if commission.status in (Commission.Status.PENDING, Commission.Status.APPROVED) and not queued:
                delta = target - commission.amount_minor
                commission.amount_minor = target
                fields = ["amount_minor"]
                if target == 0:
                    commission.status = Commission.Status.REVERSED
                    commission.status_changed_at = timezone.now()
                    commission.status_reason = f"{kind.capitalize()}: {reason}".strip(": ")
                    fields += ["status", "status_changed_at", "status_reason"]
                stats[key][column] += delta
                commission.save(update_fields=fields)
            elif commission.status == Commission.Status.PAID or queued:
                adjusted = commission.original_minor + (
                    commission.derived.filter(kind=Commission.Kind.ADJUSTMENT).aggregate(s=Sum("amount_minor"))["s"]
                    or 0
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
                    stats[key]["commission_approved_minor"] += delta
        rollups.stats_add(stats)
    return refund
