"""payouts: one payout run for 10,000 affiliates sent by a real Celery worker against the Stripe
double with 50 ms per call; every item paid once, reconciled."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from tests.bench.common import (
    PY,
    ROOT,
    analyze,
    bench_tenant,
    cpu_seconds,
    other_load,
    platform_setup,
    process_stop,
    prose,
    redis_forget,
    setup_django,
    with_target,
    write_results,
)


def _payouts_data(tenant: Any, double: Any, *, affiliates: int, amount_minor: int) -> Any:
    """A program and `affiliates` approved affiliates, each owed one approved commission of
    `amount_minor` (above the threshold), each with an Express account onboarded at the double
    and mapped to it; the ledger funded for all of them. Bulk inserts, and the double's accounts
    made through its state in process (10,000 onboarding round trips would be most of the bench),
    exactly as `POST /v1/accounts` and `/_double/accounts/{id}/complete` make them. Call in the
    tenant's schema."""
    import uuid

    from django.utils import timezone

    from accounts.models import User
    from affiliates import services
    from affiliates.models import Affiliate, Commission, Conversion
    from billing import services as billing_services
    from billing.connect.models import ConnectedAccount
    from billing.models import LedgerEntry
    from devtools.stripe_double.state import RequestInfo

    program = services.program_create(name="Bench program", slug="bench", payout_threshold_minor=1000)
    now = timezone.now()
    users = User.objects.bulk_create(
        [User(email=f"payee{i}@bench.test", role=User.Role.AFFILIATE, password="!") for i in range(affiliates)],
        batch_size=2000,
    )
    members = Affiliate.objects.bulk_create(
        [
            Affiliate(program=program, user=u, status=Affiliate.Status.APPROVED, code=f"payee{i}")
            for i, u in enumerate(users)
        ],
        batch_size=2000,
    )
    conversions = Conversion.objects.bulk_create(
        [
            Conversion(
                program=program,
                external_id=f"order-{i}",
                event_type="purchase",
                amount_minor=amount_minor * 10,
                currency="USD",
                occurred_at=now - timedelta(days=40),
            )
            for i in range(affiliates)
        ],
        batch_size=2000,
    )
    Commission.objects.bulk_create(
        [
            Commission(
                program=program,
                conversion=c,
                affiliate=a,
                base_minor=amount_minor * 10,
                original_minor=amount_minor,
                amount_minor=amount_minor,
                currency="USD",
                status=Commission.Status.APPROVED,
                approvable_at=now - timedelta(days=10),
            )
            for c, a in zip(conversions, members, strict=True)
        ],
        batch_size=2000,
    )
    accounts = []
    for member in members:
        account = double.state.account_create(
            {
                "type": "express",
                "country": "US",
                "email": member.user.email,
                "metadata": {"tenant": tenant.schema_name, "affiliate_id": str(member.pk)},
                "capabilities": {"transfers": {"requested": "true"}},
            },
            RequestInfo(),
        )
        double.state.account_complete(account["id"])
        accounts.append(
            ConnectedAccount(
                stripe_id=account["id"],
                tenant=tenant,
                affiliate_id=member.pk,
                country="US",
                details_submitted=True,
                payouts_enabled=True,
                transfers=ConnectedAccount.Transfers.ACTIVE,
                synced_at=int(time.time()),
            )
        )
    ConnectedAccount.objects.bulk_create(accounts, batch_size=2000)
    billing_services.ledger_post(
        kind=LedgerEntry.Kind.FUNDING,
        currency="USD",
        amount_minor=affiliates * amount_minor,
        reference=f"bench:{uuid.uuid4()}",
        memo="Bench funding",
    )
    analyze("affiliates_commission", "affiliates_affiliate", "billing_connect_connectedaccount")
    return program


@contextlib.contextmanager
def _celery_workers(env: dict[str, str], *, concurrency: int, timeout: float = 60) -> Iterator[None]:
    """A Celery worker (prefork, `concurrency` processes) on this run's queue (CELERY_QUEUE in
    `env`), yielding once it answers a ping."""
    from config.celery import app

    worker = subprocess.Popen(
        [
            PY,
            "-m",
            "celery",
            "--quiet",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(concurrency),
            "-Q",
            env["CELERY_QUEUE"],
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not app.control.ping(timeout=1.0):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the Celery worker did not start")
        yield
    finally:
        process_stop(worker, timeout=60)


def bench_payouts(
    affiliates: int = 10_000, latency_ms: int = 50, amount_minor: int = 2500, timeout: float = 900
) -> None:
    platform_setup()
    setup_django()
    from django.test import override_settings
    from django_tenants.utils import tenant_context

    from billing import gateway, payouts, reconcile
    from billing.connect.models import ConnectedAccount
    from billing.models import PayoutItem, PayoutRun
    from config.celery import app
    from devtools.stripe_double import running

    concurrency = int(os.environ.get("BENCH_PAYOUT_CONCURRENCY", "4"))
    key = "sk_test_double_bench"
    # The double in this process (its server threads; this process otherwise only polls).
    with running() as double, bench_tenant("payouts") as (tenant, _owner):
        queue = f"bench-{tenant.slug}"
        app.conf.task_default_queue = queue  # the run is queued from here, on commit
        # The double is refused in production (config.settings), so the worker runs the
        # development profile with DEBUG off, as `make run` does apart from DEBUG.
        env = {
            **os.environ,
            "DJANGO_ENV": "development",
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "STRIPE_SECRET_KEY": key,
            "STRIPE_API_BASE": double.url,
            "CELERY_QUEUE": queue,
        }
        try:
            started = time.perf_counter()
            with tenant_context(tenant):
                program = _payouts_data(tenant, double, affiliates=affiliates, amount_minor=amount_minor)
            setup_s = time.perf_counter() - started
            print(f"data for {affiliates:,} affiliates in {setup_s:.1f}s", flush=True)
            double.faults(latency_ms=latency_ms)
            meter: dict[str, Any] = {}
            with _celery_workers(env, concurrency=concurrency), other_load(meter):
                _, ours_before = cpu_seconds()
                started = time.perf_counter()
                with tenant_context(tenant):
                    run = payouts.payout_run_create(program=program)
                    created_s = time.perf_counter() - started
                    deadline = time.monotonic() + timeout
                    while PayoutRun.objects.get(pk=run.pk).status != PayoutRun.Status.DONE:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"the run was not done after {timeout:.0f}s")
                        time.sleep(0.2)
                    seconds = time.perf_counter() - started
                # CPU of the worker, its PostgreSQL backends and this process (the double).
                cpu_s = cpu_seconds()[1] - ours_before
            print(f"run done in {seconds:.1f}s (made in {created_s:.1f}s)", flush=True)
            double.faults(latency_ms=0)
            transfers = double.state.summary()["transfers"]
            by_item: dict[tuple, int] = {}
            for transfer in transfers:
                metadata = transfer["metadata"]
                ident = (metadata.get("tenant"), metadata.get("run"), metadata.get("item"))
                by_item[ident] = by_item.get(ident, 0) + 1
            with (
                tenant_context(tenant),
                override_settings(STRIPE_SECRET_KEY=key, STRIPE_API_BASE=double.url, STRIPE_TIMEOUT_SECONDS=30.0),
            ):
                gateway._client.cache_clear()
                items = PayoutItem.objects.filter(run=run).count()
                paid = PayoutItem.objects.filter(run=run, status=PayoutItem.Status.PAID).count()
                attempts = sum(PayoutItem.objects.filter(run=run).values_list("attempts", flat=True))
                differences = reconcile.differences(transfers=reconcile.stripe_transfers())
            gateway._client.cache_clear()
        finally:
            ConnectedAccount.objects.filter(tenant=tenant).delete()  # public rows that point at the tenant
            redis_forget(f"bench-{tenant.slug}")

    duplicates = sum(n - 1 for n in by_item.values())
    # Exactly once is a check, not a figure: a run that pays anyone twice (or misses anyone) fails.
    ok = len(transfers) == items == paid == affiliates and duplicates == 0 and not differences
    write_results(
        "payouts",
        {
            "affiliates": affiliates,
            **with_target("seconds", round(seconds, 1), seconds < 60, "< 60"),
            "items": items,
            "items_paid": paid,
            "transfers_at_stripe": len(transfers),
            "duplicate_transfers": duplicates,
            "reconcile_differences": len(differences),
            "attempts": attempts,
            "stripe_latency_ms": latency_ms,
            "items_per_s": round(items / seconds, 1),
            "run_create_s": round(created_s, 1),
            "worker_pool": "prefork",
            "worker_concurrency": concurrency,
            "send_threads_per_process": payouts.SEND_THREADS,
            "batch_size": payouts.BATCH,
            "cpu_ms_per_item": round(cpu_s * 1000 / max(items, 1), 2),
            "cpu_cores_used": round(cpu_s / seconds, 2),
            "other_load_cores": meter["other_load_cores"],
            "data_setup_s": round(setup_s, 1),
            "exactly_once": "yes" if ok else "NO",
        },
        prose(f"""
            One payout run for {affiliates:,} approved affiliates, each owed one approved commission of
            {amount_minor / 100:.2f} USD (threshold 10.00) and holding an onboarded Express account at the
            local Stripe double (run in the bench process, {latency_ms} ms added to every API call), the ledger
            funded for all of them. Timed from `payout_run_create` (staff's click: items made, queued on commit)
            until the run is `done`, sent by a real Celery worker (prefork, {concurrency} processes, on this run's
            own queue): the run task fans out one task per batch of {payouts.BATCH} items; each batch is reserved,
            claimed and recorded in one transaction each, its transfers sent {payouts.SEND_THREADS} at a time by
            threads. Afterwards every transfer at the double is counted and grouped by the (tenant, run, item)
            in its metadata (`duplicate_transfers`: transfers beyond the first per item), and
            `billing.reconcile` compares items, ledger and transfers (`reconcile_differences`). Bulk inserts and
            the double's state API make the data (`data_setup_s`, not timed). `cpu_ms_per_item`: CPU the
            worker, its PostgreSQL backends and this process (the double) used per item while the run was
            sent (`cpu_cores_used`: the same per second of the run). `other_load_cores`: CPU other
            processes on this 2-core machine used meanwhile (other sessions' tests): figures are depressed when
            it is not near 0.
        """),
    )
    if not ok:
        raise RuntimeError("payouts: not every item was paid exactly once (see the figures above)")
