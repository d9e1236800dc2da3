"""Daily rollups behind the stats API, kept current as events arrive (clicks: by the drain
in `tracking`, in SQL).

Every change is an additive upsert (`INSERT .. ON CONFLICT DO UPDATE SET x = x + excluded.x`),
so concurrent writers never lose an increment and no one reads-then-writes a counter.
"""

from __future__ import annotations

import json
from datetime import date

from django.db import connection

StatKey = tuple[date, int, int, int | None]  # (day, program, affiliate, link): a DailyStat row
StatDeltas = dict[StatKey, dict[str, int]]  # column -> amount to add

_STAT_COLUMNS = (
    "clicks",
    "unique_visitors",
    "conversions",
    "revenue_minor",
    "commission_pending_minor",
    "commission_approved_minor",
    "commission_paid_minor",
)


def stats_add(rows: StatDeltas) -> None:
    """Add deltas to DailyStat rows keyed by (date, program, affiliate, link)."""
    statement = stats_add_sql(rows)
    if statement is not None:
        with connection.cursor() as cursor:
            cursor.execute(*statement)


def stats_add_sql(rows: StatDeltas) -> tuple[str, list[str]] | None:
    """The upsert behind `stats_add`, for a caller that runs it inside a statement of its own
    (as a CTE); None when there is nothing to add. The rows travel as one JSON parameter, so
    the statement's text and parameter count stay the same however many rows there are."""
    rows = {key: deltas for key, deltas in rows.items() if any(deltas.values())}
    if not rows:
        return None
    # Sorted keys: two writers lock the same rows in the same order, so they cannot deadlock
    # (the click drain in `tracking` sorts its rollup rows the same way, in SQL).
    records = [
        {
            "d": day.isoformat(),
            "p": program_id,
            "a": affiliate_id,
            "l": link_id,
            **{c: deltas.get(c, 0) for c in _STAT_COLUMNS},
        }
        for (day, program_id, affiliate_id, link_id), deltas in sorted(rows.items(), key=lambda kv: _lock_order(kv[0]))
    ]
    return _STATS_SQL, [json.dumps(records)]


_STATS_SQL = (
    f"INSERT INTO affiliates_dailystat (date, program_id, affiliate_id, link_id, {', '.join(_STAT_COLUMNS)}) "  # noqa: S608
    f"SELECT d, p, a, l, {', '.join(_STAT_COLUMNS)} FROM jsonb_to_recordset(%s::jsonb) "
    f"AS r(d date, p bigint, a bigint, l bigint, {', '.join(f'{c} bigint' for c in _STAT_COLUMNS)}) "
    "ORDER BY d, p, a, l NULLS LAST "
    f"ON CONFLICT (date, affiliate_id, link_id) DO UPDATE "
    f"SET {', '.join(f'{c} = affiliates_dailystat.{c} + excluded.{c}' for c in _STAT_COLUMNS)}"
)


def _lock_order(key: StatKey) -> tuple[date, int, int, bool, int]:
    day, program_id, affiliate_id, link_id = key
    return (day, program_id, affiliate_id, link_id is None, link_id or 0)  # link NULLS LAST


def commission_column(status: str) -> str | None:
    return {
        "pending": "commission_pending_minor",
        "approved": "commission_approved_minor",
        "paid": "commission_paid_minor",
    }.get(status)
