"""Daily rollups behind the stats API, kept current as events arrive.

Every change is an additive upsert (`INSERT .. ON CONFLICT DO UPDATE SET x = x + excluded.x`),
so concurrent writers never lose an increment and no one reads-then-writes a counter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import connection

_STAT_COLUMNS = (
    "clicks",
    "unique_visitors",
    "conversions",
    "revenue_minor",
    "commission_pending_minor",
    "commission_approved_minor",
    "commission_paid_minor",
)


@dataclass(frozen=True)
class ClickCount:
    date: date
    program_id: int
    affiliate_id: int
    link_id: int | None
    unique: bool
    source: str


def stats_add(rows: dict[tuple[date, int, int, int | None], dict[str, int]]) -> None:
    """Add deltas to DailyStat rows keyed by (date, program, affiliate, link)."""
    rows = {key: deltas for key, deltas in rows.items() if any(deltas.values())}
    if not rows:
        return
    values = []
    params: list = []
    for (day, program_id, affiliate_id, link_id), deltas in sorted(rows.items(), key=lambda kv: str(kv[0])):
        values.append("(%s, %s, %s, %s" + ", %s" * len(_STAT_COLUMNS) + ")")
        params.extend([day, program_id, affiliate_id, link_id, *(deltas.get(c, 0) for c in _STAT_COLUMNS)])
    updates = ", ".join(f"{c} = affiliates_dailystat.{c} + excluded.{c}" for c in _STAT_COLUMNS)
    # Sorted keys: two writers lock the same rows in the same order, so they cannot deadlock.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO affiliates_dailystat (date, program_id, affiliate_id, link_id, {', '.join(_STAT_COLUMNS)}) "  # noqa: S608
            f"VALUES {', '.join(values)} "
            f"ON CONFLICT (date, affiliate_id, link_id) DO UPDATE SET {updates}",
            params,
        )


def clicks_add(counts: Iterable[ClickCount]) -> None:
    stats: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sources: dict[tuple, int] = defaultdict(int)
    for count in counts:
        key = (count.date, count.program_id, count.affiliate_id, count.link_id)
        stats[key]["clicks"] += 1
        stats[key]["unique_visitors"] += int(count.unique)
        sources[(count.date, count.program_id, count.affiliate_id, count.source)] += 1
    stats_add(stats)
    if sources:
        values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(sources))
        params: list = []
        for (day, program_id, affiliate_id, source), clicks in sorted(sources.items(), key=lambda kv: str(kv[0])):
            params.extend([day, program_id, affiliate_id, source, clicks])
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO affiliates_dailysource (date, program_id, affiliate_id, source, clicks) "  # noqa: S608
                f"VALUES {values} ON CONFLICT (date, affiliate_id, source) "
                "DO UPDATE SET clicks = affiliates_dailysource.clicks + excluded.clicks",
                params,
            )


def commission_column(status: str) -> str | None:
    return {
        "pending": "commission_pending_minor",
        "approved": "commission_approved_minor",
        "paid": "commission_paid_minor",
    }.get(status)
