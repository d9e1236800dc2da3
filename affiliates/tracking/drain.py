"""Buffered clicks into PostgreSQL, in batches: by a Celery beat task every second
(`affiliates.tasks.clicks_drain`) and by conversion ingestion first (`clicks_flush`), so that a
conversion arriving right after its click still sees it.

A stream entry is deleted only after its rows are committed, and rows are inserted with ON
CONFLICT DO NOTHING on the click id, so a drain that dies half-way is repeated without loss or
double counting.
"""

from __future__ import annotations

import logging
from typing import cast

from django.db import connection, transaction
from redis.exceptions import RedisError

from affiliates.tracking.buffer import StreamEntry, redis_client, stream_key
from affiliates.tracking.store import batch_store

logger = logging.getLogger(__name__)

DRAIN_BATCH = 2000


def batch_of(entries: list[StreamEntry]) -> bytes:
    """The stream entries as one JSON array, by splicing bytes: the row is already JSON, so the
    flag and the unique-visit mark only need to be put in front of its fields."""
    parts = []
    for _entry_id, fields in entries:
        row = fields[b"c"]
        parts.append(b'{"f":"' + fields[b"f"] + b'","u":' + (fields[b"u"] or b"0") + b"," + row[1:])
    return b"[" + b",".join(parts) + b"]"


def clicks_drain(*, max_batches: int = 50) -> int:
    """Move buffered clicks of the current tenant from Redis to PostgreSQL. Returns how many
    rows were inserted. Safe to run concurrently (an advisory lock serialises drains of one
    tenant) and to repeat after a crash (ON CONFLICT DO NOTHING, deletes after commit)."""
    key = stream_key(connection.schema_name)
    client = redis_client()
    total = 0
    for _ in range(max_batches):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
            # redis-py types the reply loosely (sync or async, bytes or str); this client's is bytes.
            entries = cast(list[StreamEntry], client.xrange(key, count=DRAIN_BATCH))
            if not entries:
                return total
            total += batch_store(batch_of(entries))
        # After the commit: a crash before this line only means the next drain re-reads
        # entries whose rows exist, and ON CONFLICT skips them (the rollups count inserted rows).
        client.xdel(key, *[entry_id for entry_id, _ in entries])
        if len(entries) < DRAIN_BATCH:
            return total
    return total


def clicks_flush() -> None:
    """Make every click buffered so far visible in the database (conversions call this first)."""
    try:
        if redis_client().xlen(stream_key(connection.schema_name)):
            clicks_drain()
    except RedisError:
        # Without Redis the clicks were inserted directly; nothing is waiting.
        logger.warning("click buffer unavailable while flushing", exc_info=True)
