"""conversions: `POST /api/v1/conversions` under load against 10,000 clicks in the window."""

from __future__ import annotations

import http.client
import json
import secrets
from datetime import timedelta
from typing import Any

from tests.bench.common import (
    WORKERS,
    analyze,
    bench_tenant,
    clicks_insert,
    ensure_wrk,
    gunicorn_serving,
    platform_setup,
    production_env,
    program_with_affiliates,
    setup_django,
    tenant_host,
    untenanted,
    with_target,
    write_results,
    wrk_run,
)


def _probe(port: int, host: str, method: str, path: str, headers: dict[str, str], body: str | None = None) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


# --- the benchmarks --------------------------------------------------------------------------


def bench_conversions(
    seconds: int = 15, connections: int = 8, affiliates: int = 20, clicks: int = 10_000, visitors: int = 2_000
) -> None:
    ensure_wrk()
    platform_setup()
    setup_django()
    from django.db.models import Count
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from affiliates import services
    from affiliates.models import Click, Commission, Conversion, ConversionCredit, Link

    with bench_tenant("conversions") as (tenant, owner):
        with tenant_context(tenant):
            program, members = program_with_affiliates(owner, affiliates, rule_percent="10")
            links = dict(Link.objects.filter(slug="").values_list("affiliate_id", "id"))
            now = timezone.now()
            clicks_insert(
                program_id=program.id,
                targets=[(a.id, links[a.id]) for a in members],
                count=clicks,
                visitors=visitors,
                since=now - timedelta(days=20),
                until=now - timedelta(minutes=1),
            )
            analyze("affiliates_click")
            window_start = now - timedelta(days=program.cookie_window_days)
            in_window = Click.objects.filter(created_at__gte=window_start).count()
            key = services.api_key_create(name="bench", scopes=["conversions:write"], by=owner).secret
        host = tenant_host(tenant)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        run_id = secrets.token_hex(3)
        with gunicorn_serving(production_env(CELERY_QUEUE=f"bench-{tenant.slug}"), host) as port:
            status, body = _probe(
                port,
                host,
                "POST",
                "/api/v1/conversions",
                headers,
                json.dumps(
                    {
                        "external_id": f"probe-{run_id}",
                        "event_type": "purchase",
                        "amount": "49.90",
                        "currency": "USD",
                        "visitor_id": "00000000-0000-4000-8000-000000000001",
                        "customer_id": f"probe-{run_id}",
                    }
                ),
            )
            if status != 201:
                raise RuntimeError(f"POST /api/v1/conversions answered {status} (expected 201): {body[:500]}")

            def load(duration: int, tag: str) -> dict[str, Any]:
                return wrk_run(
                    port,
                    host,
                    duration,
                    connections,
                    path="/api/v1/conversions",
                    threads=2,
                    headers=tuple(f"{k}: {v}" for k, v in headers.items()),
                    script_args=["201", "conversions", f"{run_id}{tag}", str(visitors)],
                )

            load(3, "w")  # warm-up: connections, caches
            result = load(seconds, "m")
            print(result, flush=True)
        # This machine's speed drifts by half within hours; a bare Django 302 measured right after
        # (as in the clicks benchmark) says how fast it was during this run.
        bare_env, bare_extra = untenanted(production_env())
        with gunicorn_serving(bare_env, "localhost", bare_extra) as bare_port:
            wrk_run(bare_port, "localhost", 2, 16, path="/bare302")
            bare = wrk_run(bare_port, "localhost", 10, 16, path="/bare302")
            print("bare", bare, flush=True)
        with tenant_context(tenant):
            recorded = Conversion.objects.count()
            credited = Conversion.objects.annotate(n=Count("credits")).filter(n__gt=0).count()
            commissions = Commission.objects.count()
            credits = ConversionCredit.objects.count()

    rate = round(result["rps"], 1)
    p99 = round(result["p99_ms"], 2)
    write_results(
        "conversions",
        {
            **with_target("conversions_per_s", rate, rate >= 300, ">= 300"),
            "p50_ms": round(result["p50_ms"], 2),
            **with_target("p99_ms", p99, p99 < 50, "< 50"),
            "requests": result["requests"],
            "non_201": result["unexpected"],
            "non_201_sample": result["unexpected_sample"][:200],
            "socket_errors": result["socket_errors"],
            "clicks_in_window": in_window,
            "other_load_cores": result["other_load_cores"],
            "visitors": visitors,
            "affiliates": affiliates,
            "conversions_recorded": recorded,
            "conversions_credited": credited,
            "credits": credits,
            "commissions": commissions,
            "seconds": seconds,
            "connections": connections,
            "gunicorn_workers": WORKERS,
            "bare_302_per_s": round(bare["rps"], 1),
        },
        "`POST /api/v1/conversions` (API key with `conversions:write`, JSON purchase of 49.90 USD, a unique "
        "external id and customer id per request, the visitor one of "
        f"{visitors:,} who made {clicks:,} clicks over the last 20 days on {affiliates} approved affiliates, "
        f"10 % rule, last-click attribution) served by gunicorn (deploy/gunicorn.conf.py, {WORKERS} sync workers, "
        f"production settings); wrk (2 threads, {connections} connections) on loopback for {seconds} s after a "
        "3 s warm-up. Clicks were inserted with SQL, not through the tracker, and nothing is buffered in Redis "
        "(each conversion's flush finds an empty stream). `conversions_recorded` includes the warm-up and one "
        "probe; `conversions_credited` is how many found a click to credit. `bare_302_per_s`: a bare Django 302 "
        "(no database or Redis work; the clicks benchmark's baseline) under the same server setup and wrk "
        "(1 thread, 16 connections), measured right after, for the machine's speed during this run.",
    )
