"""The offline payout flow of `make run`, end to end: the demo tenant, the platform over HTTP (a
live server), the local Stripe double delivering signed webhooks to it, and a real Celery worker
sending the run. The same function (`devtools.demo_flow.run`) is what `python -m devtools.demo_flow`
runs against `make run`."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from billing import gateway, reconcile, webhooks
from billing.models import LedgerEntry, PayoutItem
from devtools import demo_flow
from devtools.demo_tenant import demo_tenant_ensure
from devtools.stripe_double import running
from tenants.models import Tenant
from tests.support.tenants import unique_slug

SECRET = "whsec_double_demo_flow"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fund_onboard_sell_run_and_see_it_paid_all_over_http(
    platform_ready, live_server, tmp_path, monkeypatch, request
):
    port = urlsplit(live_server.url).port
    with override_settings(STRIPE_WEBHOOK_SECRET=SECRET, PLATFORM_PORT=str(port)):
        endpoint = webhooks.webhook_endpoints_ensure()["platform"]
    with (
        running(webhook_url=endpoint.url, webhook_secret=SECRET) as double,
        override_settings(
            STRIPE_SECRET_KEY="sk_test_double_demo",
            STRIPE_API_BASE=double.url,
            STRIPE_WEBHOOK_SECRET=SECRET,
            PLATFORM_PORT=str(port),
        ),
    ):
        gateway._client.cache_clear()
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_double_demo")
        monkeypatch.setenv("STRIPE_API_BASE", double.url)
        request.getfixturevalue("worker")
        slug = unique_slug("demo")
        key_file = tmp_path / "demo-api-key"
        demo_tenant_ensure(slug=slug, email="owner@demo.example", password="demo-owner-password", key_file=key_file)

        seen: list[str] = []
        paid = demo_flow.run(
            demo_flow.Tenant(live_server.url, f"{slug}.localhost:{port}"),
            owner=("owner@demo.example", "demo-owner-password"),
            affiliate=("affiliate@demo.example", "demo-affiliate-password"),
            api_key=key_file.read_text().strip(),
            say=seen.append,
            timeout=120,
        )

        # then the affiliate's payout is paid, for the 20 % commission on the 300.00 sale
        assert (paid["status"], paid["amount"], paid["currency"]) == ("paid", "60.00", "USD")
        assert [c["amount"] for c in paid["commissions"]] == ["60.00"]
        # the ledger was funded by the Checkout webhook and debited once by the transfer
        with tenant_context(Tenant.objects.get(slug=slug)):
            assert sorted(LedgerEntry.objects.values_list("kind", "amount_minor")) == [
                ("funding", 50_000),
                ("transfer", -6_000),
            ]
            item = PayoutItem.objects.get()
            transfers = requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"]
            assert [(t["id"], t["amount"], t["destination"]) for t in transfers] == [
                (item.stripe_transfer_id, 6_000, item.destination)
            ]
            assert reconcile.differences(transfers=reconcile.stripe_transfers()) == []
        assert any("can receive transfers" in line for line in seen)
        connection.set_schema_to_public()
    gateway._client.cache_clear()
