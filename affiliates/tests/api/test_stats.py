"""Stats from the daily rollups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from affiliates.tests.api.support import conversion_for

pytestmark = pytest.mark.django_db


def test_stats_come_from_rollups_in_a_bounded_number_of_queries(world):
    from django.test.utils import CaptureQueriesContext

    conversion_for(world)
    today = timezone.now().date()
    client = world.clients["key_read"]
    url = f"/api/v1/stats?date_from={today - timedelta(days=29)}&date_to={today}&affiliate={world.aff.id}"
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    statements = [q["sql"] for q in queries.captured_queries]
    # the rollups answer: the currency, the daily series, top links, top sources; never raw clicks
    assert sum("affiliates_daily" in sql or "affiliates_program" in sql for sql in statements) == 4
    assert not any("affiliates_click" in sql for sql in statements)
    assert len(statements) <= 10  # plus routing, search_path and the API key lookup
    data = response.json()
    assert data["totals"]["clicks"] == 1 and data["totals"]["conversions"] == 1
    assert data["totals"]["revenue"] == "10.00" and data["totals"]["commission_pending"] == "1.00"
    assert len(data["series"]) == 30 and data["series"][-1]["conversions"] == 1
