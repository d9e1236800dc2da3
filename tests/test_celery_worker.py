"""Tasks carry their tenant to a real worker process, through real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.db import connection

from tenants.models import Tenant
from tenants.scheduler import ActiveTenantScheduler
from tests.support.tenants import unique_slug


def _wait_for_files(directory: Path, count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(directory.glob("*.log")) if directory.exists() else []
        if len(files) >= count:
            time.sleep(0.2)  # let the last write finish
            return [f.read_text() for f in files]
        time.sleep(0.2)
    raise AssertionError(f"expected {count} emails in {directory}, found {len(files)}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_welcome_email_is_sent_by_a_real_worker_in_each_tenants_schema(make_tenant, worker, tmp_path):
    # Both owners have user id 1 in their own schema: only the right schema finds the right one.
    a = make_tenant(name="Alpha Shoes", slug=unique_slug("alpha"), email="ann@alpha.test")
    b = make_tenant(name="Beta Books", slug=unique_slug("beta"), email="bob@beta.test")
    assert a.owner.pk == b.owner.pk

    emails = _wait_for_files(worker, 2)
    by_recipient = {next(line for line in m.splitlines() if line.startswith("To: "))[4:]: m for m in emails}
    assert set(by_recipient) == {"ann@alpha.test", "bob@beta.test"}
    assert "Alpha Shoes" in by_recipient["ann@alpha.test"]
    assert a.url in by_recipient["ann@alpha.test"]
    assert "Beta Books" in by_recipient["bob@beta.test"]
    assert b.url in by_recipient["bob@beta.test"]
    assert "Alpha" not in by_recipient["bob@beta.test"]
    assert Tenant.objects.filter(pk__in=[a.tenant.pk, b.tenant.pk], welcome_email_sent_at__isnull=False).count() == 2


@pytest.mark.django_db(transaction=True)
def test_welcome_email_task_is_idempotent(make_tenant, settings, mailoutbox):
    from django_tenants.utils import tenant_context

    from tenants.tasks import welcome_email_send

    provisioned = make_tenant()
    with tenant_context(provisioned.tenant):
        assert welcome_email_send.apply(args=[provisioned.owner.pk]).get() is True
        assert welcome_email_send.apply(args=[provisioned.owner.pk]).get() is False
    assert [m.to for m in mailoutbox] == [[provisioned.owner.email]]


def test_beat_sends_tenant_tasks_to_active_businesses_only(make_tenant):
    from tenants import services

    active, suspended = make_tenant(), make_tenant()
    services.tenant_suspend(tenant=suspended.tenant)
    schemas = set(ActiveTenantScheduler.get_queryset().values_list("schema_name", flat=True))
    assert active.tenant.schema_name in schemas
    assert suspended.tenant.schema_name not in schemas
    assert "public" not in schemas and "tenant_template" not in schemas


def _poll(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("the worker did not get there in time")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_click_drain_and_commission_approval_run_in_a_real_worker(make_tenant, worker):
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from affiliates import conversions, tasks, tracking
    from affiliates.models import Click, Commission
    from affiliates.tests import factories

    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program()
    aff = factories.affiliate(program)
    factories.rule(program, percent="10")
    target = tracking.target_resolve(code=aff.code)
    long_ago = timezone.now() - timedelta(days=45)
    visitors = [uuid.uuid4() for _ in range(5)]
    for i, visitor in enumerate(visitors):
        tracking.click_record(
            target=target, visitor_id=visitor, ip=f"10.7.0.{i}", user_agent="Mozilla/5.0", at=long_ago
        )
    assert Click.objects.count() == 0

    # the task carries the schema (tenant-schemas-celery); the worker drains this tenant's buffer
    tasks.clicks_drain.delay()
    _poll(lambda: Click.objects.count() == 5)

    conversion, _ = conversions.conversion_record(
        program=program,
        external_id="old-order",
        event_type="purchase",
        amount="30.00",
        currency="USD",
        visitor_id=visitors[0],
        occurred_at=long_ago + timedelta(hours=1),
    )
    assert conversion.commissions.get().status == "pending"
    tasks.commissions_approve_due.delay()
    _poll(lambda: Commission.objects.get(conversion=conversion).status == "approved")
    connection.set_schema_to_public()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_payout_run_is_sent_by_a_real_worker_exactly_once(make_tenant, monkeypatch, request):

    import requests
    from django.test import override_settings

    from affiliates.tests import factories
    from billing import gateway, payouts, reconcile
    from billing.models import PayoutItem
    from billing.tests import factories as payout_factories
    from devtools.stripe_double import running

    with running() as double, override_settings(STRIPE_SECRET_KEY="sk_test_double_worker", STRIPE_API_BASE=double.url):
        gateway._client.cache_clear()
        # the worker process talks to the same double
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_double_worker")
        monkeypatch.setenv("STRIPE_API_BASE", double.url)
        request.getfixturevalue("worker")

        provisioned = make_tenant()
        tenant = provisioned.tenant
        connection.set_tenant(tenant)
        program = factories.program(payout_threshold_minor=100)
        factories.rule(program, percent="10")
        for _ in range(3):
            payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "20.00"))
        payout_factories.fund(10_000)

        # when staff make a run: it is queued on commit and a worker sends it
        run = payouts.payout_run_create(program=program)
        _poll(lambda: set(PayoutItem.objects.filter(run=run).values_list("status", flat=True)) == {"paid"})

        # then three transfers, one per item, and everything reconciles
        state = requests.get(f"{double.url}/_double/state", timeout=5).json()
        assert len(state["transfers"]) == 3
        assert sorted(t["metadata"]["item"] for t in state["transfers"]) == sorted(
            str(pk) for pk in run.items.values_list("pk", flat=True)
        )
        assert reconcile.differences(transfers=reconcile.stripe_transfers()) == []
        connection.set_schema_to_public()
    gateway._client.cache_clear()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_real_workers_sending_one_run_at_once_transfer_each_item_once(
    make_tenant, monkeypatch, tmp_path, _celery_test_queue
):
    import requests
    from django.test import override_settings

    from affiliates.tests import factories
    from billing import gateway, payouts, reconcile, tasks
    from billing.models import PayoutItem, PayoutRun
    from billing.tests import factories as payout_factories
    from devtools.stripe_double import running
    from tests.support.workers import worker_start, worker_stop

    with running() as double, override_settings(STRIPE_SECRET_KEY="sk_test_double_two", STRIPE_API_BASE=double.url):
        gateway._client.cache_clear()
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_double_two")
        monkeypatch.setenv("STRIPE_API_BASE", double.url)
        tenant = make_tenant().tenant
        connection.set_tenant(tenant)
        program = factories.program(payout_threshold_minor=100)
        factories.rule(program, percent="10")
        for _ in range(8):
            payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "20.00"))
        payout_factories.fund(100_000)
        # Slow transfers, so that the two workers are inside the same batch at the same time.
        double.faults({"path": "/v1/transfers*", "mode": "latency", "latency_ms": 400})

        # given a run queued three times over (staff's click, beat's resume, a retry)
        run = payouts.payout_run_create(program=program)
        tasks.payout_run_execute.delay(run.pk)
        tasks.payout_run_execute.delay(run.pk)
        # when two worker processes take the same batches side by side
        workers = [worker_start(tmp_path / name, _celery_test_queue) for name in ("a", "b")]
        try:
            _poll(lambda: PayoutRun.objects.get(pk=run.pk).status == "done", timeout=120)
        finally:
            for proc in workers:
                worker_stop(proc)

        # then both worked on it, and every item was transferred exactly once
        logs = [(tmp_path / name / "worker.log").read_text() for name in ("a", "b")]
        assert all("billing.tasks.payout_items_execute" in log for log in logs)
        assert set(PayoutItem.objects.filter(run=run).values_list("status", flat=True)) == {"paid"}
        transfers = requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"]
        assert sorted(t["metadata"]["item"] for t in transfers) == sorted(
            str(pk) for pk in run.items.values_list("pk", flat=True)
        )
        assert reconcile.differences(transfers=reconcile.stripe_transfers()) == []
        connection.set_schema_to_public()
    gateway._client.cache_clear()
