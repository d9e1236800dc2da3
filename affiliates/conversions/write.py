"""*write*: a conversion's `Plan` as one statement, and the conversion as the ORM reads it back."""

from __future__ import annotations

from typing import Any

from django.db import connection

from affiliates import rollups
from affiliates.conversions.context import ConversionContext
from affiliates.conversions.plan import Plan
from affiliates.models import Commission, Conversion, ConversionCredit
from core import sqlrows

_CONVERSION_FIELDS = Conversion._meta.concrete_fields


def _conversion(ctx: ConversionContext, plan: Plan) -> Conversion:
    order = ctx.order
    return Conversion(
        program=ctx.program,
        external_id=order.external_id,
        idempotency_key=order.idempotency_key,
        event_type=order.event_type,
        amount_minor=order.amount_minor,
        currency=order.currency,
        customer=ctx.customer,
        product_ids=order.product_ids,
        metadata=order.metadata,
        hints=order.hints,
        occurred_at=order.occurred_at,
        attribution=plan.attribution,
        flags=plan.flags,
        review=plan.review,
    )


def _commissions(
    ctx: ConversionContext, plan: Plan, conversion: Conversion
) -> tuple[list[Commission], list[Commission]]:
    """(first-tier, second-tier) commissions; a second-tier one's `source` is set in SQL."""
    common: dict[str, Any] = {
        "program": ctx.program,
        "conversion": conversion,
        "currency": conversion.currency,
        "held_for_review": plan.held_for_review,
        "approvable_at": plan.approvable_at,
    }
    firsts = [
        Commission(
            affiliate_id=line.affiliate_id,
            link_id=line.link_id,
            rule=line.rule,
            base_minor=line.base_minor,
            original_minor=line.amount_minor,
            amount_minor=line.amount_minor,
            **common,
        )
        for line in plan.commissions
    ]
    seconds = [
        Commission(
            affiliate_id=line.affiliate_id,
            rule=None,
            kind=Commission.Kind.SECOND_TIER,
            base_minor=line.base_minor,
            original_minor=line.amount_minor,
            amount_minor=line.amount_minor,
            **common,
        )
        for line in plan.second_tier
    ]
    return firsts, seconds


def plan_write(ctx: ConversionContext, plan: Plan) -> Conversion:
    """Every write of a conversion in one statement: the conversion, its credits, commissions
    (a second-tier one points at its first-tier one, found by affiliate), the customer's
    binding and the rollups. A repeated external id or key fails the whole statement on the
    unique index (IntegrityError), so nothing of it is written. Rows are built from model
    instances with Django's own field adaptation, so every column is covered and typed as
    the ORM would write it. Returns the conversion as saved, its credits in `written_credits`
    (the API answers from them without reading them back)."""
    conversion = _conversion(ctx, plan)
    credits = [
        ConversionCredit(
            conversion=conversion,
            affiliate_id=line.affiliate_id,
            link_id=line.link_id,
            weight=line.weight,
            revenue_minor=line.revenue_minor,
            occurred_at=conversion.occurred_at,
        )
        for line in plan.credits
    ]
    firsts, seconds = _commissions(ctx, plan, conversion)
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
        returning = "id, affiliate_id"
        cte("first", *sqlrows.insert(firsts, expressions={"conversion_id": conversion_ref}, returning=returning))
    if seconds:
        source = {id(s): [line.source_affiliate_id] for s, line in zip(seconds, plan.second_tier, strict=True)}
        expressions: sqlrows.Expressions = {
            "conversion_id": conversion_ref,
            "source_id": lambda obj: ("(SELECT id FROM first WHERE affiliate_id = %s)", source[id(obj)]),
        }
        cte("second", *sqlrows.insert(seconds, expressions=expressions))
    customer, change = ctx.customer, plan.customer_change
    if customer is not None and change.fields():
        for name in change.fields():
            setattr(customer, name, getattr(change, name))
        cte("cust", *sqlrows.update(customer, change.fields()))
    stat_sql = rollups.stats_add_sql(plan.stats)
    if stat_sql is not None:
        cte("stat", *stat_sql)
    with sqlrows.prepared() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT id FROM conv", params, prepare=True)  # noqa: S608
        pk = cursor.fetchone()[0]
    return _saved(conversion, pk, credits)


def _saved(conversion: Conversion, pk: int, credits: list[ConversionCredit]) -> Conversion:
    """The conversion as the ORM builds a row it read (`from_db`), with its program, customer
    and credits attached."""
    values = [pk if f.primary_key else getattr(conversion, f.attname) for f in _CONVERSION_FIELDS]
    saved = Conversion.from_db(connection.alias, None, values)
    saved.program = conversion.program
    saved.customer = conversion.customer
    saved.written_credits = credits  # type: ignore[attr-defined]  # read by the API's CreditSerializer
    return saved
