"""*load*: everything a conversion's plan decides by, read in as few round trips as the hot path
allows, into a frozen `ConversionContext`. Reads only, except the two writes that must happen
before the reads (the customer's upsert, which locks it, and the binding of new visitors)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.utils import timezone

from affiliates import rules as rule_eval
from affiliates.conversions.customers import CUSTOMER_UPSERT, customer_from
from affiliates.conversions.validate import ConversionInput
from affiliates.models import Affiliate, CommissionRule, Coupon, Customer, Program
from core import sqlrows

MAX_TOUCHPOINTS = 200


@dataclass(frozen=True)
class Touch:
    """A click considered for attribution (not flagged)."""

    id: uuid.UUID
    affiliate_id: int
    link_id: int | None
    created_at: datetime
    is_self: bool


@dataclass(frozen=True)
class Party:
    """An affiliate that may be credited: its user's email (self-referral) and parent (second tier)."""

    id: int
    email: str
    parent_id: int | None
    parent_approved: bool


@dataclass(frozen=True)
class ConversionContext:
    """What the plan decides by. `parties` holds every affiliate named below (clicks, coupon,
    code, binding); `tier_totals` the trailing performance of those whose rule has tiers."""

    program: Program
    order: ConversionInput
    customer: Customer | None  # created or found, and locked
    clicks: Sequence[Touch]  # inside the window, newest first
    flooded: bool  # flood-flagged clicks were among the visitor's (they do not count)
    parties: Mapping[int, Party]
    coupon_affiliate_id: int | None  # the approved owner of the active coupon sent
    code_affiliate_id: int | None  # the approved affiliate of the code sent, else who referred the customer
    bound_affiliate_id: int | None  # the customer's binding, while that affiliate is approved
    prior: int  # the customer's earlier conversions, counted only when a rule needs them
    rules: Sequence[CommissionRule]
    tier_totals: Mapping[int, rule_eval.TierTotals]
    now: datetime


# Everything attribution reads, in one statement: the visitors (sent, behind the click id, and
# those already bound to the customer), the binding of new visitors to the customer, the
# touchpoints inside the window with their affiliates, and, only when a rule needs it, the
# customer's earlier conversions. Data-modifying CTEs run whether or not the SELECT reads them.
# It names the customer by external id, not row id, so that it can travel in one round trip
# with the customer's upsert (`_read`); being a statement of its own, it reads after the
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


@dataclass(frozen=True)
class _Read:
    """What the first round trip read."""

    customer: Customer | None
    clicks: list[Touch]
    flooded: bool
    parties: dict[int, Party]
    prior: int


def _read(*, program: Program, order: ConversionInput, count_prior: bool, now: datetime) -> _Read:
    """The customer (created or found, and locked), the touchpoints newest first with their
    affiliates, and the customer's earlier conversions (0 unless `count_prior`). The
    transaction's BEGIN, the upsert and the context go to PostgreSQL in one pipeline: one round
    trip instead of three."""
    customer_external_id = order.customer_external_id
    params = {
        "visitors": [order.visitor] if order.visitor else [],
        "click": order.click_id,
        "program": program.id,
        "customer": customer_external_id,
        "now": now,
        "start": order.occurred_at - timedelta(days=program.cookie_window_days),
        "at": order.occurred_at,
        "limit": MAX_TOUCHPOINTS,
        "count_prior": count_prior and customer_external_id is not None,
    }
    with sqlrows.prepared() as cursor, psycopg.Cursor(cursor.connection) as context:
        with cursor.connection.pipeline():
            if customer_external_id:
                cursor.execute(
                    CUSTOMER_UPSERT, [program.id, customer_external_id, order.customer_email, now], prepare=True
                )
            context.execute(_CONTEXT_SQL, params, prepare=True)
        customer = customer_from(cursor.fetchone()).customer if customer_external_id else None
        rows = context.fetchall()
    *touches, (_, *_, prior) = rows  # the last row only carries the count of earlier conversions
    clicks: list[Touch] = []
    parties: dict[int, Party] = {}
    flooded = False
    for (
        _,
        click_id,
        affiliate_id,
        link_id,
        created_at,
        flagged,
        is_self,
        email,
        parent_id,
        parent_approved,
        _,
    ) in touches:
        parties[affiliate_id] = Party(affiliate_id, email, parent_id, bool(parent_approved))
        if flagged:
            flooded = True
        else:
            clicks.append(Touch(click_id, affiliate_id, link_id, created_at, is_self))
    return _Read(customer=customer, clicks=clicks, flooded=flooded, parties=parties, prior=prior or 0)


_PARTY_COLUMNS = ("id", "user__email", "parent_id", "parent__status")


def _party(affiliate_id: int, email: str, parent_id: int | None, parent_status: str | None) -> Party:
    return Party(affiliate_id, email, parent_id, parent_status == Affiliate.Status.APPROVED)


def _coupon_party(program: Program, coupon: str | None) -> Party | None:
    if not coupon:
        return None
    row = (
        Coupon.objects.filter(
            code=coupon.strip().upper(),
            is_active=True,
            affiliate__program=program,
            affiliate__status=Affiliate.Status.APPROVED,
        )
        .values_list("affiliate_id", "affiliate__user__email", "affiliate__parent_id", "affiliate__parent__status")
        .first()
    )
    return _party(*row) if row else None


def _code_party(program: Program, code: str | None) -> Party | None:
    if not code:
        return None
    row = (
        Affiliate.objects.filter(program=program, code=code.strip().lower(), status=Affiliate.Status.APPROVED)
        .values_list(*_PARTY_COLUMNS)
        .first()
    )
    return _party(*row) if row else None


def _parties_with_status(ids: set[int]) -> dict[int, tuple[Party, str]]:
    rows = Affiliate.objects.filter(id__in=ids).values_list(*_PARTY_COLUMNS, "status")
    return {i: (_party(i, email, parent, parent_status), status) for i, email, parent, parent_status, status in rows}


@dataclass(frozen=True)
class _Named:
    """The affiliates a coupon, a code or the customer names, with their parties."""

    coupon_affiliate_id: int | None
    code_affiliate_id: int | None
    bound_affiliate_id: int | None
    parties: dict[int, Party]


def _named(
    *, program: Program, order: ConversionInput, customer: Customer | None, known: Mapping[int, Party]
) -> _Named:
    """A query for a coupon, one for a code, and one for the customer's referrer and binding
    when the clicks did not bring them (a clicked affiliate is approved)."""
    parties: dict[int, Party] = {}
    coupon, code = _coupon_party(program, order.coupon), _code_party(program, order.code)
    for party in (coupon, code):
        if party is not None:
            parties[party.id] = party
    referrer = customer.referred_by_id if customer is not None and code is None else None
    bound = customer.affiliate_id if customer is not None else None
    missing = {i for i in (referrer, bound) if i is not None and i not in known and i not in parties}
    found = _parties_with_status(missing) if missing else {}
    for party, _status in found.values():
        parties[party.id] = party
    if bound in missing and (bound not in found or found[bound][1] != Affiliate.Status.APPROVED):
        bound = None  # a binding counts while its affiliate is approved
    if referrer is not None and referrer not in known and referrer not in parties:
        referrer = None
    return _Named(
        coupon_affiliate_id=coupon.id if coupon else None,
        code_affiliate_id=code.id if code else referrer,
        bound_affiliate_id=bound,
        parties=parties,
    )


def _tier_totals(
    *, rules: Sequence[CommissionRule], candidates: set[int], rule_ctx: rule_eval.RuleContext, at: datetime
) -> dict[int, rule_eval.TierTotals]:
    """Trailing totals (one query) of the candidates whose rule has tiers; none without such rules.
    Read before attribution decides (the plan stays pure), so a candidate that ends up without
    credit may be counted in vain; in return, one query however many credited affiliates have
    tiered rules."""
    if not any(r.tiers for r in rules):
        return {}
    tiered = set()
    for affiliate_id in candidates:
        rule = rule_eval.rule_choose(rules, affiliate_id=affiliate_id, ctx=rule_ctx)
        if rule is not None and rule.tiers:
            tiered.add(affiliate_id)
    return rule_eval.tier_totals(tiered, before=at) if tiered else {}


def context_load(*, program: Program, order: ConversionInput, rules: Sequence[CommissionRule]) -> ConversionContext:
    """Inside the caller's transaction and `sqlrows.prepared()`: one round trip for the customer
    and the clicks, and a query more for a coupon, a code, a referrer or binding the clicks did
    not bring, and for tiered rules."""
    now = timezone.now()
    read = _read(program=program, order=order, count_prior=rule_eval.rules_count_prior(rules), now=now)
    named = _named(program=program, order=order, customer=read.customer, known=read.parties)
    parties = {**read.parties, **named.parties}
    # Whoever the plan may credit: the affiliates of counted clicks, the coupon, code and binding.
    candidates = {c.affiliate_id for c in read.clicks} | {
        i for i in (named.coupon_affiliate_id, named.code_affiliate_id, named.bound_affiliate_id) if i is not None
    }
    rule_ctx = rule_eval.rule_context(
        event_type=order.event_type,
        product_ids=order.product_ids,
        occurred_at=order.occurred_at,
        customer_first_at=read.customer.first_conversion_at if read.customer else None,
        prior=read.prior,
    )
    return ConversionContext(
        program=program,
        order=order,
        customer=read.customer,
        clicks=read.clicks,
        flooded=read.flooded,
        parties=parties,
        coupon_affiliate_id=named.coupon_affiliate_id,
        code_affiliate_id=named.code_affiliate_id,
        bound_affiliate_id=named.bound_affiliate_id,
        prior=read.prior,
        rules=rules,
        tier_totals=_tier_totals(rules=rules, candidates=candidates, rule_ctx=rule_ctx, at=order.occurred_at),
        now=now,
    )
