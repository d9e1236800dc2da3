"""stats: `GET /api/v1/stats` over 90 days for an affiliate with 1,000,000 clicks."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.bench.common import (
    WORKERS,
    analyze,
    bench_tenant,
    clicks_insert,
    gunicorn_serving,
    other_load,
    percentile,
    platform_setup,
    production_env,
    program_with_affiliates,
    setup_django,
    tenant_host,
    with_target,
    write_results,
)


def _stats_data(program: Any, affiliate: Any, links: list[int], *, clicks: int, conversions: int, days: int) -> None:
    """Raw rows with SQL and bulk inserts, then the daily rollups rebuilt from them with SQL
    aggregates, the same figures `affiliates.rollups` would have added up event by event."""
    from django.db import connection
    from django.utils import timezone

    from affiliates.models import Commission, Conversion, ConversionCredit

    now = timezone.now()
    since = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    referrers = (
        "",
        "https://news.example.net/story",
        "https://blog.example.org/review",
        "https://www.google.com/",
        "https://t.co/abc",
        "https://forum.example.com/thread/1",
    )
    clicks_insert(
        program_id=program.id,
        targets=[(affiliate.id, link) for link in links],
        count=clicks,
        visitors=clicks // 4,
        since=since,
        until=now,
        referrers=referrers,
    )
    rule = program.rules.first()
    span = now - since
    rows = []
    for i in range(conversions):
        at = since + span * (i / conversions)
        rows.append(
            Conversion(
                program=program,
                external_id=f"order-{i}",
                event_type="purchase",
                amount_minor=4990,
                currency="USD",
                occurred_at=at,
                created_at=at,
                attribution={"source": "clicks"},
            )
        )
    created = Conversion.objects.bulk_create(rows, batch_size=2000)
    ConversionCredit.objects.bulk_create(
        [
            ConversionCredit(
                conversion=c,
                affiliate=affiliate,
                link_id=links[i % len(links)],
                weight=1,
                revenue_minor=4990,
                occurred_at=c.occurred_at,
            )
            for i, c in enumerate(created)
        ],
        batch_size=2000,
    )

    def status(at: datetime) -> str:  # older commissions have moved on, so all three columns fill
        age = (now - at).days
        return "paid" if age > 60 else "approved" if age > 30 else "pending"

    Commission.objects.bulk_create(
        [
            Commission(
                program=program,
                conversion=c,
                affiliate=affiliate,
                link_id=links[i % len(links)],
                rule=rule,
                base_minor=4990,
                original_minor=499,
                amount_minor=499,
                currency="USD",
                status=status(c.occurred_at),
                approvable_at=c.occurred_at + timedelta(days=program.hold_days),
            )
            for i, c in enumerate(created)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO affiliates_dailystat (date, program_id, affiliate_id, link_id, clicks, unique_visitors, "
            "  conversions, revenue_minor, commission_pending_minor, commission_approved_minor, "
            "  commission_paid_minor) "
            "SELECT day, program_id, affiliate_id, link_id, sum(clicks), sum(uv), sum(conv), sum(rev), sum(pending), "
            "       sum(approved), sum(paid) FROM ("
            # unique_visitors: distinct visitors per day and link, as the tracker's per-day sets count them
            "  SELECT (created_at AT TIME ZONE 'UTC')::date AS day, program_id, affiliate_id, link_id, "
            "         count(*) AS clicks, count(DISTINCT visitor_id) AS uv, 0 AS conv, 0 AS rev, 0 AS pending, "
            "         0 AS approved, 0 AS paid "
            "  FROM affiliates_click WHERE flagged = '' GROUP BY 1, 2, 3, 4 "
            "  UNION ALL "
            "  SELECT (cr.occurred_at AT TIME ZONE 'UTC')::date, c.program_id, cr.affiliate_id, cr.link_id, 0, 0, "
            "         count(*), sum(cr.revenue_minor), 0, 0, 0 "
            "  FROM affiliates_conversioncredit cr JOIN affiliates_conversion c ON c.id = cr.conversion_id "
            "  GROUP BY 1, 2, 3, 4 "
            "  UNION ALL "
            "  SELECT (c.occurred_at AT TIME ZONE 'UTC')::date, m.program_id, m.affiliate_id, m.link_id, 0, 0, 0, 0, "
            "         sum(m.amount_minor) FILTER (WHERE m.status = 'pending'), "
            "         sum(m.amount_minor) FILTER (WHERE m.status = 'approved'), "
            "         sum(m.amount_minor) FILTER (WHERE m.status = 'paid') "
            "  FROM affiliates_commission m JOIN affiliates_conversion c ON c.id = m.conversion_id "
            "  GROUP BY 1, 2, 3, 4"
            ") AS parts GROUP BY 1, 2, 3, 4"
        )
        cursor.execute(
            "INSERT INTO affiliates_dailysource (date, program_id, affiliate_id, source, clicks) "
            "SELECT (created_at AT TIME ZONE 'UTC')::date, program_id, affiliate_id, "
            "       coalesce(substring(referrer FROM '^[a-z]+://([^/:?#]+)'), ''), count(*) "
            "FROM affiliates_click WHERE flagged = '' GROUP BY 1, 2, 3, 4"
        )
    analyze(
        "affiliates_click",
        "affiliates_conversion",
        "affiliates_conversioncredit",
        "affiliates_commission",
        "affiliates_dailystat",
        "affiliates_dailysource",
    )


def bench_stats(
    requests: int = 200, warmups: int = 10, clicks: int = 1_000_000, conversions: int = 10_000, days: int = 90
) -> None:
    platform_setup()
    setup_django()
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from affiliates import selectors, services
    from affiliates.models import Click, Conversion, DailySource, DailyStat

    with bench_tenant("stats") as (tenant, owner):
        with tenant_context(tenant):
            program, (affiliate,) = program_with_affiliates(owner, 1, rule_percent="10")
            # Five links, so the rollups hold a row per day and link and "top links" has work to do.
            links = [affiliate.links.get(slug="").id] + [
                services.link_create(affiliate=affiliate, slug=f"campaign-{n}").id for n in range(1, 5)
            ]
            started = time.perf_counter()
            _stats_data(program, affiliate, links, clicks=clicks, conversions=conversions, days=days)
            load_s = time.perf_counter() - started
            date_to = timezone.now().date()
            date_from = date_to - timedelta(days=days - 1)
            in_range = {"created_at__date__gte": date_from, "created_at__date__lte": date_to}
            clicks_in_range = Click.objects.filter(**in_range).count()
            conversions_in_range = Conversion.objects.filter(
                occurred_at__date__gte=date_from, occurred_at__date__lte=date_to
            ).count()
            rollup_rows = DailyStat.objects.count() + DailySource.objects.count()
            # The selector alone, in this process: how much of a request is the queries themselves.
            selector_times = []
            for n in range(warmups + 50):
                t0 = time.perf_counter()
                selectors.stats(date_from=date_from, date_to=date_to, affiliate_ids=[affiliate.id])
                if n >= warmups:
                    selector_times.append((time.perf_counter() - t0) * 1000)
            key = services.api_key_create(name="bench", scopes=["read"], by=owner).secret
        host = tenant_host(tenant)
        path = f"/api/v1/stats?affiliate={affiliate.id}&date_from={date_from}&date_to={date_to}"
        with gunicorn_serving(production_env(CELERY_QUEUE=f"bench-{tenant.slug}"), host) as port:
            # Sequential requests on one keep-alive connection: the latency of one dashboard load.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            times = []
            body = ""
            meter: dict[str, Any] = {}
            with other_load(meter):
                for n in range(warmups + requests):
                    t0 = time.perf_counter()
                    conn.request("GET", path, headers={"Host": host, "Authorization": f"Bearer {key}"})
                    response = conn.getresponse()
                    body = response.read().decode(errors="replace")
                    elapsed = (time.perf_counter() - t0) * 1000
                    if response.status != 200:
                        raise RuntimeError(f"GET {path} answered {response.status}: {body[:500]}")
                    if n >= warmups:
                        times.append(elapsed)
            conn.close()
        totals = json.loads(body)["totals"]

    median = round(statistics.median(times), 2)
    write_results(
        "stats",
        {
            **with_target("median_ms", median, median < 50, "< 50"),
            "p95_ms": round(percentile(times, 95), 2),
            "p99_ms": round(percentile(times, 99), 2),
            "max_ms": round(max(times), 2),
            "selector_median_ms": round(statistics.median(selector_times), 2),
            "clicks_in_range": clicks_in_range,
            "conversions_in_range": conversions_in_range,
            "api_total_clicks": totals["clicks"],
            "api_total_conversions": totals["conversions"],
            "rollup_rows": rollup_rows,
            "other_load_cores": meter["other_load_cores"],
            "days": days,
            "requests": requests,
            "data_load_s": round(load_s, 1),
        },
        f"`GET /api/v1/stats?affiliate=..&date_from=..&date_to=..` ({days} days) with a `read` API key, served "
        f"by gunicorn (deploy/gunicorn.conf.py, {WORKERS} sync workers, production settings); "
        f"{requests} sequential requests on one keep-alive connection after {warmups} warm-ups, timed by the "
        f"client. One affiliate with five links, {clicks:,} clicks and {conversions:,} conversions (with credits "
        "and commissions) spread evenly over the range, inserted with SQL; the daily rollups (`DailyStat`, "
        "`DailySource`) rebuilt from them with SQL aggregates (the endpoint reads only rollups); tables "
        "ANALYZEd after the load. `selector_median_ms` is `affiliates.selectors.stats` alone, in process. "
        "`api_total_*` are the totals the endpoint returned (they must equal the rows in range).",
    )
