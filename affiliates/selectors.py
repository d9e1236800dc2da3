"""Reads: lists scoped to the caller, and stats from the daily rollups (never raw clicks)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet, Sum

from accounts.models import User
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, Commission, CommissionRule, DailySource, DailyStat, Program
from affiliates.rules import rules_for_programs
from core import money
from core.localcache import cacheable, forget_after_commit, local_cache

_SUMS = (
    "clicks",
    "unique_visitors",
    "conversions",
    "revenue_minor",
    "commission_pending_minor",
    "commission_approved_minor",
    "commission_paid_minor",
)


@dataclass(frozen=True)
class Programs:
    """The tenant's programs and their active rules, as conversion ingestion needs them: read
    on every conversion, changed a few times a year. Treat as read-only (shared in the process)."""

    by_slug: dict[str, Program]
    default: Program | None  # the first active program
    rules: dict[int, list[CommissionRule]]


def _programs_key() -> str:
    return f"#programs:{connection.schema_name}"


def programs_snapshot() -> Programs:
    """From the per-process cache (core.localcache); `programs_forget` after any change to a
    program or a rule drops it in every process."""
    key = _programs_key()
    hit = local_cache.get(key)
    if hit is not None:
        return hit
    generation = local_cache.generation()
    programs = list(Program.objects.order_by("id"))
    rules: dict[int, list[CommissionRule]] = defaultdict(list)
    for rule in rules_for_programs([p.id for p in programs]):
        rules[rule.program_id].append(rule)
    snapshot = Programs(
        by_slug={p.slug: p for p in programs},
        default=next((p for p in programs if p.is_active), None),
        rules=dict(rules),
    )
    if cacheable():
        local_cache.put(key, snapshot, generation=generation)
    return snapshot


def programs_forget() -> None:
    forget_after_commit([_programs_key()])


def program_resolve(slug: str | None) -> Program:
    """The program an ingestion call names by slug, or the first active one."""
    programs = programs_snapshot()
    if slug:
        program = programs.by_slug.get(slug)
        if program is None:
            raise AffiliateError("program_unknown", "No program has that slug.", field="program")
        return program
    if programs.default is None:
        raise AffiliateError("no_program", "Create a program first.", field="program")
    return programs.default


def program_rules(program: Program) -> list[CommissionRule]:
    return programs_snapshot().rules.get(program.id, [])


def affiliate_ids_of(user: User) -> list[int]:
    """The ids of the user's affiliates, one per program it joined (what an affiliate's rows are scoped by)."""
    return list(Affiliate.objects.filter(user=user).values_list("id", flat=True))


def affiliate_own(*, user: User, affiliate_id: int | None = None) -> Affiliate:
    """The caller's own affiliate: the one named, or else its only one (an affiliate is one per
    program it joined). Refuses, with `field="affiliate"` where the caller can fix it: a named
    affiliate that is not the caller's (404 `not_found`), a caller that is no program's affiliate
    (404 `not_found`), and one in several programs that named none (400 `affiliate_required`)."""
    own = list(Affiliate.objects.filter(user=user).select_related("user").order_by("id"))
    if affiliate_id is not None:
        for affiliate in own:
            if affiliate.id == affiliate_id:
                return affiliate
        raise AffiliateError("not_found", "You have no affiliate account with that id.", field="affiliate", status=404)
    if len(own) == 1:
        return own[0]
    if not own:
        raise AffiliateError("not_found", "You are not an affiliate of any program here.", status=404)
    raise AffiliateError(
        "affiliate_required", "You are in several programs: name the affiliate id to use.", field="affiliate"
    )


def _figures(row: dict[str, int], currency: str | None) -> dict[str, Any]:
    def fmt(minor: int) -> str:
        return money.format_minor(minor, currency) if currency else str(minor)

    clicks = row.get("clicks") or 0
    conversions = row.get("conversions") or 0
    rate = (Decimal(conversions) / Decimal(clicks)).quantize(Decimal("0.0001")) if clicks else Decimal("0.0000")
    return {
        "clicks": clicks,
        "unique_visitors": row.get("unique_visitors") or 0,
        "conversions": conversions,
        "conversion_rate": str(rate),
        "revenue": fmt(row.get("revenue_minor") or 0),
        "commission_pending": fmt(row.get("commission_pending_minor") or 0),
        "commission_approved": fmt(row.get("commission_approved_minor") or 0),
        "commission_paid": fmt(row.get("commission_paid_minor") or 0),
    }


def stats(
    *,
    date_from: date,
    date_to: date,
    program_id: int | None = None,
    affiliate_ids: list[int] | None = None,
    link_id: int | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """Totals, a daily series (every day in the range, zeros included), top links and top
    sources. Four queries whatever the volume: the rollups hold one row per day, affiliate and
    link. Amounts are in the program's currency, so a tenant whose programs use several
    currencies must name the program."""
    programs = Program.objects.all() if program_id is None else Program.objects.filter(pk=program_id)
    currencies = set(programs.values_list("currency", flat=True))
    if len(currencies) > 1:
        raise AffiliateError("program_required", "Programs use several currencies; name one.", field="program")
    currency = currencies.pop() if currencies else None

    rows = DailyStat.objects.filter(date__gte=date_from, date__lte=date_to)
    sources = DailySource.objects.filter(date__gte=date_from, date__lte=date_to)
    if program_id is not None:
        rows, sources = rows.filter(program_id=program_id), sources.filter(program_id=program_id)
    if affiliate_ids is not None:
        rows, sources = rows.filter(affiliate_id__in=affiliate_ids), sources.filter(affiliate_id__in=affiliate_ids)
    if link_id is not None:
        rows = rows.filter(link_id=link_id)
        # Sources are kept per affiliate, not per link: with a link filter there are none to show.
        sources = sources.none()

    by_day = {r["date"]: r for r in rows.values("date").annotate(**{k: Sum(k) for k in _SUMS})}
    totals = {k: sum(r[k] or 0 for r in by_day.values()) for k in _SUMS}
    series = []
    day = date_from
    while day <= date_to:
        series.append({"date": day, **_figures(by_day.get(day, {}), currency)})
        day += timedelta(days=1)
    links = (
        rows.values("link_id")
        .annotate(clicks=Sum("clicks"), conversions=Sum("conversions"), revenue_minor=Sum("revenue_minor"))
        .order_by("-clicks", "-conversions", "link_id")[:top]
    )
    top_sources = sources.values("source").annotate(clicks=Sum("clicks")).order_by("-clicks", "source")[:top]
    return {
        "currency": currency,
        "totals": _figures(totals, currency),
        "series": series,
        "top_links": [
            {
                "link": r["link_id"],
                "clicks": r["clicks"] or 0,
                "conversions": r["conversions"] or 0,
                "revenue": money.format_minor(r["revenue_minor"] or 0, currency) if currency else "0",
            }
            for r in links
        ],
        "top_sources": [{"source": r["source"], "clicks": r["clicks"]} for r in top_sources],
    }


def commissions_in_id_order() -> QuerySet[Commission]:
    """All commissions, oldest first: what billing prefetches to list the commissions each payout
    pays (billing reads commissions through affiliates, never their table)."""
    return Commission.objects.order_by("id")
