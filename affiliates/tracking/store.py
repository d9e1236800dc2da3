"""Click rows into PostgreSQL: one statement per batch, for the drain and for a direct insert.

The per-click work runs in PostgreSQL rather than in Python: insert the clicks (skipping ids
already stored: a repeated drain), then add the inserted, unflagged ones to the daily rollups.
Rollup rows are locked in (date, program, affiliate, link NULLS LAST) order, the order
`rollups.stats_add` uses, so a drain and a conversion touching the same rows cannot deadlock.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TypedDict

from django.db import connection, transaction

from affiliates.models import Click


class ClickRow(TypedDict):
    """One click as it travels through the buffer (JSON) into _BATCH_SQL's recordset."""

    id: str
    program_id: int
    affiliate_id: int
    link_id: int
    visitor_id: str
    created_at: str  # ISO 8601, with its offset
    source: str
    landing_url: str
    referrer: str
    user_agent: str
    ip_hash: str
    sub_ids: dict[str, str]
    utm: dict[str, str]
    is_self: bool
    src: str  # the referrer's host, for the daily sources


def encode(values: object) -> bytes:
    """Compact JSON, the form rows take in the buffer and in _BATCH_SQL's parameter."""
    return json.dumps(values, separators=(",", ":"), default=str).encode()


# Each element is a ClickRow with "f": its flag and "u": 1 for the day's first visit, else 0.
_BATCH_SQL = """
WITH batch AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS b(
        id uuid, program_id bigint, affiliate_id bigint, link_id bigint, visitor_id uuid,
        created_at timestamptz, source text, landing_url text, referrer text, user_agent text,
        ip_hash text, sub_ids jsonb, utm jsonb, is_self boolean, f text, u int, src text)
), inserted AS (
    INSERT INTO affiliates_click (id, program_id, affiliate_id, link_id, visitor_id, created_at, source,
        landing_url, referrer, user_agent, ip_hash, sub_ids, utm, is_self, flagged)
    SELECT id, program_id, affiliate_id, link_id, visitor_id, created_at, source, landing_url, referrer,
           user_agent, ip_hash, coalesce(sub_ids, '{}'), coalesce(utm, '{}'), is_self, f
    FROM batch
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), counted AS (
    SELECT (b.created_at AT TIME ZONE 'UTC')::date AS day, b.program_id, b.affiliate_id, b.link_id, b.u,
           coalesce(b.src, '') AS src
    FROM batch b JOIN inserted USING (id)
    WHERE b.f = ''
), stats AS (
    INSERT INTO affiliates_dailystat (date, program_id, affiliate_id, link_id, clicks, unique_visitors,
        conversions, revenue_minor, commission_pending_minor, commission_approved_minor, commission_paid_minor)
    SELECT day, program_id, affiliate_id, link_id, count(*), sum(u), 0, 0, 0, 0, 0
    FROM counted GROUP BY day, program_id, affiliate_id, link_id
    ORDER BY day, program_id, affiliate_id, link_id NULLS LAST
    ON CONFLICT (date, affiliate_id, link_id) DO UPDATE
    SET clicks = affiliates_dailystat.clicks + excluded.clicks,
        unique_visitors = affiliates_dailystat.unique_visitors + excluded.unique_visitors
), sources AS (
    INSERT INTO affiliates_dailysource (date, program_id, affiliate_id, source, clicks)
    SELECT day, program_id, affiliate_id, src, count(*)
    FROM counted GROUP BY day, program_id, affiliate_id, src
    ORDER BY day, program_id, affiliate_id, src
    ON CONFLICT (date, affiliate_id, source) DO UPDATE
    SET clicks = affiliates_dailysource.clicks + excluded.clicks
)
SELECT count(*) FROM inserted
"""


def batch_store(batch: bytes) -> int:
    """Store a JSON array of click rows (each with "f" and "u", see _BATCH_SQL) and add them to
    the rollups; returns how many were new. Runs inside the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_SQL, [batch.decode()])
        return cursor.fetchone()[0]


def row_insert_direct(row: ClickRow) -> None:
    """Store one click without the buffer (Redis is down): counted, but not deduplicated, and
    unique for the day unless the visitor has an unflagged click on the link that day."""
    with transaction.atomic():
        today_seen = Click.objects.filter(
            visitor_id=row["visitor_id"],
            link_id=row["link_id"],
            created_at__date=datetime.fromisoformat(row["created_at"]).date(),
            flagged="",
        ).exists()
        batch_store(encode([{**row, "f": "", "u": 0 if today_seen else 1}]))
