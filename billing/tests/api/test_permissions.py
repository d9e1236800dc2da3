"""The permission matrix (staff, affiliates, API keys of every scope, anonymous, another tenant's
session and key on this tenant's host, and this tenant's session on another tenant's host)."""

from __future__ import annotations

import pytest
from django.db import connection

from billing.connect.models import ConnectedAccount
from billing.models import Funding, PayoutItem, PayoutRun
from billing.tests.api.support import ALL, STAFF, expect, post, session
from core.api.viewsets import ScopedView
from core.tests.support import views_of
from tests.support.tenants import host_of

pytestmark = pytest.mark.django_db


def _matrix():
    return [
        ("get", "/api/v1/payout-runs", None, expect(STAFF)),
        ("post", "/api/v1/payout-runs", {"program": "{program}"}, expect({"staff": 201})),
        ("get", "/api/v1/payout-runs/{paid_run}", None, expect(STAFF)),
        ("post", "/api/v1/payout-runs/{waiting_run}/confirm", None, expect(STAFF)),
        ("post", "/api/v1/payout-runs/{waiting_run}/cancel", None, expect(STAFF)),
        ("get", "/api/v1/payout-items", None, expect(STAFF)),
        ("get", "/api/v1/payout-items/{paid_item}", None, expect(STAFF)),
        ("post", "/api/v1/payout-items/{paid_item}/reverse", {"reason": "fraud"}, expect(STAFF)),
        ("get", "/api/v1/ledger", None, expect(STAFF)),
        ("get", "/api/v1/ledger/entries", None, expect(STAFF)),
        ("get", "/api/v1/fundings", None, expect(STAFF)),
        ("post", "/api/v1/fundings", {"amount": "20.00", "currency": "USD"}, expect({"staff": 201})),
        ("get", "/api/v1/fundings/{funding}", None, expect(STAFF)),
        ("post", "/api/v1/fundings/{funding}/refresh", None, expect(STAFF)),
        # the other affiliate has no payout account: a clear 404 / 409, never someone else's
        ("get", "/api/v1/payout-account", None, expect({"affiliate": 200, "other_affiliate": 404})),
        ("post", "/api/v1/payout-account/onboarding", {}, expect({"affiliate": 200, "other_affiliate": 200})),
        ("post", "/api/v1/payout-account/refresh", {}, expect({"affiliate": 200, "other_affiliate": 409})),
        ("post", "/api/v1/payout-account/dashboard-link", {}, expect({"affiliate": 200, "other_affiliate": 409})),
        ("get", "/api/v1/my/payouts", None, expect({"affiliate": 200, "other_affiliate": 200})),
        ("get", "/api/v1/my/payouts.csv", None, expect({"affiliate": 200, "other_affiliate": 200})),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), _matrix(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_permission_matrix(world, method, path, body, expected):
    ids = {
        "program": world.program.id,
        "paid_run": world.paid_run.id,
        "waiting_run": world.waiting_run.id,
        "paid_item": world.paid_run.items.get().id,
        "funding": world.funding.id,
    }
    url = path.format(**ids)
    if body:
        body = {k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}
    counts = (PayoutRun.objects.count(), Funding.objects.count(), ConnectedAccount.objects.count())
    got = {}
    for who in ALL:
        client = world.clients[who]
        response = post(client, url, body) if method == "post" else client.get(url)
        got[who] = response.status_code
        if who != "staff_on_other_host":
            connection.set_tenant(world.tenant)  # (a request on B's host leaves the connection there)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "fields"}
    connection.set_tenant(world.tenant)
    assert got == expected
    # Only the allowed callers wrote anything: one run, one funding, one (other affiliate's) account.
    written = (
        PayoutRun.objects.count() - counts[0],
        Funding.objects.count() - counts[1],
        ConnectedAccount.objects.count() - counts[2],
    )
    assert written == (
        1 if path == "/api/v1/payout-runs" and method == "post" else 0,
        1 if path == "/api/v1/fundings" and method == "post" else 0,
        1 if path.endswith("/onboarding") else 0,
    )


def test_another_tenants_staff_get_404_for_this_tenants_ids(world, make_tenant):
    item = world.paid_run.items.get()
    b = make_tenant()
    connection.set_tenant(b.tenant)
    staff_b = session(host_of(b), b.owner)
    for url in (
        f"/api/v1/payout-runs/{world.paid_run.id}",
        f"/api/v1/payout-items/{item.id}",
        f"/api/v1/fundings/{world.funding.id}",
    ):
        assert staff_b.get(url).status_code == 404, url
    assert post(staff_b, f"/api/v1/payout-runs/{world.waiting_run.id}/confirm").status_code == 404
    assert post(staff_b, f"/api/v1/payout-items/{item.id}/reverse", {"reason": "x"}).status_code == 404
    assert staff_b.get("/api/v1/payout-runs").json()["results"] == []
    assert staff_b.get("/api/v1/payout-items").json()["results"] == []
    assert staff_b.get("/api/v1/ledger").json() == {"balances": []}
    connection.set_tenant(world.tenant)
    assert PayoutRun.objects.get(pk=world.waiting_run.pk).status == "awaiting_confirmation"
    assert PayoutItem.objects.get(pk=item.pk).status == "paid"


def test_every_endpoint_declares_its_access_on_the_base_class():
    views = views_of("config.urls_tenant", "billing.api.")
    assert len(set(views)) == 8
    assert [view for view in views if not issubclass(view, ScopedView)] == []
