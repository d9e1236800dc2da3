"""Click rows into PostgreSQL: the encoding, and a direct insert's unique-visit mark."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from affiliates.models import Click, DailyStat
from affiliates.tests import factories
from affiliates.tracking.clicks import click_row, new_click_id
from affiliates.tracking.store import encode, row_insert_direct
from affiliates.tracking.targets import target_resolve


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"a": 1, "b": "x"}, b'{"a":1,"b":"x"}'),
        ([{"id": uuid.UUID(int=1)}], b'[{"id":"00000000-0000-0000-0000-000000000001"}]'),
        ({"s": {"sub1": "é"}}, b'{"s":{"sub1":"\\u00e9"}}'),
    ],
)
def test_encoding(values, expected):
    assert encode(values) == expected


def test_a_direct_insert_counts_the_visitors_first_click_of_the_day_as_unique(program):
    aff = factories.affiliate(program)
    target = target_resolve(code=aff.code)
    visitor, today = uuid.uuid4(), datetime.now(UTC)
    times = [today - timedelta(days=1), today, today]  # yesterday, then twice today

    for at in times:
        row_insert_direct(
            click_row(
                click_id=new_click_id(),
                visitor=visitor,
                target=target,
                at=at,
                source="redirect",
                landing_url="",
                referrer="",
                user_agent="Mozilla/5.0",
                hashed_ip="",
                sub_ids=None,
                utm=None,
                is_self=False,
            )
        )

    stats = {s.date: (s.clicks, s.unique_visitors) for s in DailyStat.objects.filter(affiliate=aff)}
    assert stats == {times[0].date(): (1, 1), today.date(): (2, 1)}
    assert Click.objects.count() == 3
