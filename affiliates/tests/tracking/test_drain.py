"""Buffered clicks into PostgreSQL: the batch's bytes, the drain, and the flush's bound."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.db import connection

from affiliates.models import Click, DailyStat
from affiliates.tests import factories
from affiliates.tracking import buffer
from affiliates.tracking.clicks import click_record
from affiliates.tracking.drain import batch_of, clicks_drain, clicks_flush
from affiliates.tracking.targets import target_resolve


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], []),
        ([(b"1-0", {b"c": b'{"id":"a"}', b"f": b"", b"u": b"1"})], [{"f": "", "u": 1, "id": "a"}]),
        ([(b"1-0", {b"c": b'{"id":"a"}', b"f": b"flood", b"u": b"0"})], [{"f": "flood", "u": 0, "id": "a"}]),
        ([(b"1-0", {b"c": b'{"id":"a"}', b"f": b"", b"u": b""})], [{"f": "", "u": 0, "id": "a"}]),  # no mark
        (
            [
                (b"1-0", {b"c": b'{"id":"a","n":1}', b"f": b"", b"u": b"1"}),
                (b"1-1", {b"c": b'{"id":"b"}', b"f": b"", b"u": b"0"}),
            ],
            [{"f": "", "u": 1, "id": "a", "n": 1}, {"f": "", "u": 0, "id": "b"}],
        ),
    ],
)
def test_a_batch_is_the_entries_rows_with_their_marks(entries, expected):
    assert json.loads(batch_of(entries)) == expected


def test_the_drain_moves_the_buffer_into_the_database_and_empties_it(program):
    aff = factories.affiliate(program)
    target = target_resolve(code=aff.code)
    for n in range(3):
        click_record(target=target, visitor_id=uuid.uuid4(), ip=f"10.0.3.{n}", user_agent="Mozilla/5.0")

    drained = clicks_drain()

    assert drained == 3
    assert Click.objects.count() == 3
    assert DailyStat.objects.get(affiliate=aff, link__slug="").clicks == 3
    assert buffer.redis_client().xlen(buffer.stream_key(connection.schema_name)) == 0
    assert clicks_drain() == 0


def test_a_conversions_flush_fails_fast_against_a_hung_redis(program, hung_redis_url, tracker_on):
    """A conversion flushes the buffer first; against a Redis that hangs it waits the tracker's
    timeout, no retries (a redis-py client built with Redis(host=...) took 9.6 s here)."""
    tracker_on(hung_redis_url)
    started = time.monotonic()

    clicks_flush()

    assert time.monotonic() - started < 1.5
