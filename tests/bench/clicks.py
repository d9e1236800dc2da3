"""clicks: `GET /r/<code>` under load, clicks buffered in Redis and drained by a real Celery worker +
beat, vs. a bare Django 302; every click accounted for."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from tests.bench.common import (
    BROWSER_AGENT,
    WORKERS,
    bench_tenant,
    celery_worker_and_beat,
    ensure_wrk,
    gunicorn_serving,
    platform_setup,
    production_env,
    program_with_affiliates,
    prose,
    runs_mean,
    setup_django,
    tenant_host,
    untenanted,
    with_target,
    write_results,
    wrk_run,
)


def _drain_capacity(code: str, backlog: int = 20_000) -> float:
    """Clicks per second `tracking.clicks_drain` moves from a full buffer into PostgreSQL, with
    nothing else running: whether the drain or the redirect limits stored clicks. Call in the
    tenant's schema after the load (the Celery worker stopped), with the buffer empty."""
    from affiliates import tracking

    target = tracking.target_resolve(code=code)
    for i in range(backlog):  # new visitors from distinct addresses, as under load
        tracking.click_record(
            target=target, visitor_id=None, ip=f"10.200.{i // 256}.{i % 256}", user_agent=BROWSER_AGENT
        )
    started = time.perf_counter()
    moved = 0
    while moved < backlog:
        drained = tracking.clicks_drain()
        if not drained:
            break
        moved += drained
    return round(moved / (time.perf_counter() - started), 1)


def bench_clicks(seconds: int = 10, connections: int = 16, rounds: int = 3, drain_timeout: float = 120) -> None:
    ensure_wrk()
    platform_setup()
    setup_django()
    import redis
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from affiliates import tracking
    from affiliates.models import Click, DailyStat

    client = redis.Redis.from_url(settings.REDIS_URL)
    with bench_tenant("clicks") as (tenant, owner):
        with tenant_context(tenant):
            _program, (affiliate,) = program_with_affiliates(owner, 1)
        stream = tracking.stream_key(tenant.schema_name)
        host = tenant_host(tenant)

        def stored() -> int:
            with tenant_context(tenant):
                return Click.objects.count()

        def drained(timeout: float) -> float:
            """Wait until the buffer is empty and the row count settles; return the seconds waited."""
            started = time.monotonic()
            last = -1
            while time.monotonic() - started < timeout:
                now = stored()
                if client.xlen(stream) == 0 and now == last:
                    return time.monotonic() - started
                last = now
                time.sleep(0.5)
            left = client.xlen(stream)
            raise RuntimeError(f"{left} clicks still buffered after {timeout:.0f}s: is the drain running?")

        # NUM_PROXIES=1: client_ip() takes the visitor's address from X-Forwarded-For, which
        # wrk_requests.lua varies per request (see there); CELERY_QUEUE: this run's own queue.
        env = production_env(NUM_PROXIES="1", CELERY_QUEUE=f"bench-{tenant.slug}")
        bare_env, bare_extra = untenanted(env)
        loads = {
            "clicks": {"host": host, "path": f"/r/{affiliate.code}"},
            "bare": {"host": "localhost", "path": "/bare302"},
        }
        runs: dict[str, list[dict[str, Any]]] = {"clicks": [], "bare": []}
        all_click_runs: list[dict[str, Any]] = []  # warm-up included: every click must reach the table
        backlog_max = 0
        with (
            celery_worker_and_beat(env),
            gunicorn_serving(env, host) as click_port,
            gunicorn_serving(bare_env, "localhost", bare_extra) as bare_port,
        ):
            ports = {"clicks": click_port, "bare": bare_port}

            def load(name: str, duration: int) -> dict[str, Any]:
                nonlocal backlog_max
                stop = threading.Event()

                def sample() -> None:  # how far the drain falls behind while clicks arrive
                    nonlocal backlog_max
                    while not stop.wait(0.25):
                        backlog_max = max(backlog_max, client.xlen(stream))

                sampler = threading.Thread(target=sample, daemon=True)
                before = stored() if name == "clicks" else 0
                if name == "clicks":
                    sampler.start()
                result = wrk_run(
                    ports[name],
                    loads[name]["host"],
                    duration,
                    connections,
                    path=loads[name]["path"],
                    threads=2,
                    headers=(f"User-Agent: {BROWSER_AGENT}",),
                    script_args=["302", "visitors"],
                )
                stop.set()
                if name == "clicks":
                    sampler.join()
                    all_click_runs.append(result)
                    # Rows committed while the load ran: the drain's pace under load, not after it.
                    result["stored_during"] = stored() - before
                if result["unexpected"] == result["requests"]:
                    raise RuntimeError(f"no 302 from {loads[name]['path']}: {result['unexpected_sample']}")
                return result

            for name in loads:
                load(name, 2)  # warm-up: connections, caches, the Lua script's first load
            # The drain must be running before anything is measured (the worker needs a few seconds).
            drained(drain_timeout)
            for round_number in range(rounds):
                order = list(loads) if round_number % 2 == 0 else list(reversed(loads))
                for name in order:
                    runs[name].append(load(name, seconds))
                    print(name, {k: v for k, v in runs[name][-1].items() if k != "unexpected_sample"}, flush=True)
            drain_tail = drained(drain_timeout)
        clicks_stored = stored()
        with tenant_context(tenant):
            flagged = Click.objects.exclude(flagged="").count()
            rollup_clicks = sum(DailyStat.objects.values_list("clicks", flat=True))
            drain_only = _drain_capacity(affiliate.code)

    requests_sent = sum(r["requests"] - r["unexpected"] for r in all_click_runs)
    load_seconds = sum(r["seconds"] for r in all_click_runs)
    stored_per_s = round(clicks_stored / load_seconds, 1)
    redirects = runs_mean(runs["clicks"], "rps")
    bare = runs_mean(runs["bare"], "rps")
    p99 = runs_mean(runs["clicks"], "p99_ms")
    ratio = round(redirects / bare, 3)
    pace = round(statistics.mean(r["stored_during"] / r["seconds"] for r in runs["clicks"]), 1)
    write_results(
        "clicks",
        {
            **with_target("stored_clicks_per_s", stored_per_s, stored_per_s >= 1500, ">= 1500"),
            "redirects_per_s": redirects,
            "p50_ms": runs_mean(runs["clicks"], "p50_ms"),
            **with_target("p99_ms", p99, p99 < 25, "< 25"),
            "bare_302_per_s": bare,
            "bare_302_p50_ms": runs_mean(runs["bare"], "p50_ms"),
            "bare_302_p99_ms": runs_mean(runs["bare"], "p99_ms"),
            **with_target("ratio_to_bare", ratio, ratio >= 0.5, ">= 0.5"),
            "requests_sent": requests_sent,
            "clicks_stored": clicks_stored,
            "clicks_lost": requests_sent - clicks_stored,
            "clicks_flagged": flagged,
            "rollup_clicks": rollup_clicks,
            "non_302": sum(r["unexpected"] for r in all_click_runs),
            "socket_errors": sum(r["socket_errors"] for r in all_click_runs),
            "stored_during_load_per_s": pace,
            "stream_backlog_max": backlog_max,
            "drain_only_per_s": drain_only,
            "other_load_cores": runs_mean(runs["clicks"] + runs["bare"], "other_load_cores"),
            "drain_tail_s": round(drain_tail, 1),
            "seconds_per_round": seconds,
            "rounds": rounds,
            "connections": connections,
            "gunicorn_workers": WORKERS,
        },
        prose(f"""
            `GET /r/<code>` on a tenant host vs. a bare Django 302 (no database or Redis work, no tenant
            routing: tests/bench/untenanted_urls.py), both served by gunicorn (deploy/gunicorn.conf.py, {WORKERS}
            sync workers, production settings); wrk (2 threads, {connections} connections, browser User-Agent, no
            cookies, so every request is a new visitor, and a distinct X-Forwarded-For per request with
            NUM_PROXIES=1, so no click is flood-flagged) on loopback; rounds interleaved with alternating order;
            rates and latencies are means over the measured rounds. Clicks go to the Redis stream and are drained
            into PostgreSQL by a real Celery worker (concurrency 2) and beat (`drain-clicks` every second), on
            the same 2 cores. `requests_sent`: every 302 wrk received (2 s warm-up included); `clicks_stored`:
            rows once the buffer emptied (`drain_tail_s` after the load); `stored_clicks_per_s` = clicks_stored /
            seconds of click load; `stored_during_load_per_s`: rows committed while a round ran / its seconds
            (the drain's pace under load); `drain_only_per_s`: afterwards, worker stopped, 20,000 clicks
            buffered in process and drained by `tracking.clicks_drain` alone (what the drain can take);
            `clicks_lost` may be slightly negative (requests in flight when wrk stops are served but not
            counted); `other_load_cores`: CPU used by other processes on the machine during the rounds (the
            figures are depressed when it is not near 0).
        """),
    )
