"""The payouts REST API against the local Stripe double: staff runs, items, ledger and funding;
an affiliate's payout account and payouts; bad input; Stripe down; and the permission matrix
(staff, affiliates, API keys of every scope, anonymous, another tenant's session and key on this
tenant's host, and this tenant's session on another tenant's host)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
import requests
from django.db import connection
from django.test import Client, override_settings
from rest_framework import serializers

from affiliates import services as affiliate_services
from affiliates.models import Affiliate, Commission, Program
from affiliates.tests import factories
from billing import funding, gateway, payouts
from billing.api.views import billing_error_from
from billing.connect.models import ConnectedAccount
from billing.models import BankPayout, Funding, LedgerEntry, PayoutItem, PayoutRun
from billing.tests import factories as payout_factories
from devtools.stripe_double import RunningDouble
from tests.support.tenants import host_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_retries() -> int:
    return 0  # a failure is answered at once, not after stripe-python's backoff


@dataclass
class World:
    tenant: Any
    host: str
    other_host: str
    program: Program
    aff: Affiliate  # onboarded; paid in `paid_run`, pending in `waiting_run`
    other: Affiliate  # owed too little: rolled over
    paid_run: PayoutRun
    waiting_run: PayoutRun
    funding: Funding
    clients: dict[str, Client]


def _session(host: str, user) -> Client:
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    return client


def _cookies(client: Client) -> str:
    return client.cookies.output(header="", sep=";")


def _key(host: str, secret: str) -> Client:
    return Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def world(reused_tenant, double: RunningDouble) -> World:
    # Tenant B: its staff session and key must mean nothing on tenant A's host, and A's staff
    # session nothing on B's.
    b = reused_tenant()
    connection.set_tenant(b.tenant)
    b_host = host_of(b)
    b_key = affiliate_services.api_key_create(name="b", scopes=["read", "conversions:write", "track"], by=b.owner)
    b_staff = _session(b_host, b.owner)

    a = reused_tenant()
    connection.set_tenant(a.tenant)
    host = host_of(a)
    program = factories.program(slug="main", currency="USD", payout_threshold_minor=500)
    factories.rule(program, percent="10")
    aff = factories.affiliate(program, email="aff@example.org")
    other = factories.affiliate(program, email="other@example.org")
    payout_factories.onboarded(double.url, a.tenant, aff)
    payout_factories.fund(50_00)
    payout_factories.owed(program, "100.00", affiliate=aff)  # 10.00
    paid_run = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    payout_factories.owed(program, "50.00", affiliate=aff)  # 5.00
    payout_factories.owed(program, "30.00", affiliate=other)  # 3.00: below the threshold of 5.00
    waiting_run = payouts.payout_run_create(program=program, confirm=True)
    started = funding.funding_start(
        amount_minor=25_00, currency="USD", success_url=f"http://{host}/ok", cancel_url=f"http://{host}/no"
    )
    keys = {
        name: affiliate_services.api_key_create(name=name, scopes=scopes, by=a.owner).secret
        for name, scopes in {
            "key_read": ["read"],
            "key_write": ["conversions:write"],
            "key_track": ["track"],
            "key_all": ["read", "conversions:write", "track"],
        }.items()
    }
    staff = _session(host, a.owner)
    clients = {
        "anonymous": Client(HTTP_HOST=host),
        "affiliate": _session(host, aff.user),
        "other_affiliate": _session(host, other.user),
        "staff": staff,
        **{name: _key(host, secret) for name, secret in keys.items()},
        "other_tenant_staff": Client(HTTP_HOST=host, HTTP_COOKIE=_cookies(b_staff)),
        "other_tenant_key": _key(host, b_key.secret),
        "staff_on_other_host": Client(HTTP_HOST=b_host, HTTP_COOKIE=_cookies(staff)),
    }
    yield World(
        tenant=a.tenant,
        host=host,
        other_host=b_host,
        program=program,
        aff=aff,
        other=other,
        paid_run=paid_run,
        waiting_run=waiting_run,
        funding=started,
        clients=clients,
    )
    connection.set_schema_to_public()


def _iso(value) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def _post(client: Client, url: str, body: Any = None):
    return client.post(url, body if body is not None else {}, content_type="application/json")


# --- the permission matrix -------------------------------------------------------------------

ALL = (
    "anonymous",
    "affiliate",
    "other_affiliate",
    "staff",
    "key_read",
    "key_write",
    "key_track",
    "key_all",
    "other_tenant_staff",
    "other_tenant_key",
    "staff_on_other_host",
)


def _expect(allowed: dict[str, int]) -> dict[str, int]:
    # People of this tenant with the wrong role and every API key: 403. Anyone not signed in
    # here (another tenant's session or key, this tenant's session on another host): 401.
    out = {who: 403 for who in ALL}
    out.update({who: 401 for who in ("anonymous", "other_tenant_staff", "other_tenant_key", "staff_on_other_host")})
    out.update(allowed)
    return out


STAFF = {"staff": 200}


def _matrix():
    return [
        ("get", "/api/v1/payout-runs", None, _expect(STAFF)),
        ("post", "/api/v1/payout-runs", {"program": "{program}"}, _expect({"staff": 201})),
        ("get", "/api/v1/payout-runs/{paid_run}", None, _expect(STAFF)),
        ("post", "/api/v1/payout-runs/{waiting_run}/confirm", None, _expect(STAFF)),
        ("post", "/api/v1/payout-runs/{waiting_run}/cancel", None, _expect(STAFF)),
        ("get", "/api/v1/payout-items", None, _expect(STAFF)),
        ("get", "/api/v1/payout-items/{paid_item}", None, _expect(STAFF)),
        ("post", "/api/v1/payout-items/{paid_item}/reverse", {"reason": "fraud"}, _expect(STAFF)),
        ("get", "/api/v1/ledger", None, _expect(STAFF)),
        ("get", "/api/v1/ledger/entries", None, _expect(STAFF)),
        ("get", "/api/v1/fundings", None, _expect(STAFF)),
        ("post", "/api/v1/fundings", {"amount": "20.00", "currency": "USD"}, _expect({"staff": 201})),
        ("get", "/api/v1/fundings/{funding}", None, _expect(STAFF)),
        ("post", "/api/v1/fundings/{funding}/refresh", None, _expect(STAFF)),
        # the other affiliate has no payout account: a clear 404 / 409, never someone else's
        ("get", "/api/v1/payout-account", None, _expect({"affiliate": 200, "other_affiliate": 404})),
        ("post", "/api/v1/payout-account/onboarding", {}, _expect({"affiliate": 200, "other_affiliate": 200})),
        ("post", "/api/v1/payout-account/refresh", {}, _expect({"affiliate": 200, "other_affiliate": 409})),
        ("post", "/api/v1/payout-account/dashboard-link", {}, _expect({"affiliate": 200, "other_affiliate": 409})),
        ("get", "/api/v1/my/payouts", None, _expect({"affiliate": 200, "other_affiliate": 200})),
        ("get", "/api/v1/my/payouts.csv", None, _expect({"affiliate": 200, "other_affiliate": 200})),
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
        response = _post(client, url, body) if method == "post" else client.get(url)
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
    staff_b = _session(host_of(b), b.owner)
    for url in (
        f"/api/v1/payout-runs/{world.paid_run.id}",
        f"/api/v1/payout-items/{item.id}",
        f"/api/v1/fundings/{world.funding.id}",
    ):
        assert staff_b.get(url).status_code == 404, url
    assert _post(staff_b, f"/api/v1/payout-runs/{world.waiting_run.id}/confirm").status_code == 404
    assert _post(staff_b, f"/api/v1/payout-items/{item.id}/reverse", {"reason": "x"}).status_code == 404
    assert staff_b.get("/api/v1/payout-runs").json()["results"] == []
    assert staff_b.get("/api/v1/payout-items").json()["results"] == []
    assert staff_b.get("/api/v1/ledger").json() == {"balances": []}
    connection.set_tenant(world.tenant)
    assert PayoutRun.objects.get(pk=world.waiting_run.pk).status == "awaiting_confirmation"
    assert PayoutItem.objects.get(pk=item.pk).status == "paid"


# --- staff: runs and items -------------------------------------------------------------------


def test_staff_make_a_run_that_waits_for_confirmation_then_confirm_it(world):
    staff = world.clients["staff"]
    payouts.payout_run_cancel(run=world.waiting_run)  # its commissions go back to the next run

    made = _post(staff, "/api/v1/payout-runs", {"program": world.program.id, "confirm": True})

    assert made.status_code == 201, made.content
    run = PayoutRun.objects.get(pk=made.json()["id"])
    item = run.items.get()
    assert made.json() == {
        "id": run.id,
        "program": world.program.id,
        "currency": "USD",
        "status": "awaiting_confirmation",
        "total": "5.00",
        "missing": "0.00",
        "scheduled_for": None,
        "created_by": run.created_by_id,
        "created_at": _iso(run.created_at),
        "confirmed_at": None,
        "finished_at": None,
        "items": [
            {
                "id": item.id,
                "run": run.id,
                "affiliate": world.aff.id,
                "affiliate_email": "aff@example.org",
                "amount": "5.00",
                "currency": "USD",
                "status": "pending",
                "attempts": 0,
                "failure_code": "",
                "failure_message": "",
                "stripe_transfer_id": "",
                "paid_at": None,
                "reversed_at": None,
                "reversal_reason": "",
                "created_at": _iso(item.created_at),
            }
        ],
        "skipped": [{"affiliate": world.other.id, "amount": "3.00", "reason": "below_threshold"}],
    }
    assert run.created_by.role == "owner"

    confirmed = _post(staff, f"/api/v1/payout-runs/{run.id}/confirm")
    again = _post(staff, f"/api/v1/payout-runs/{run.id}/confirm")

    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "queued")
    assert confirmed.json()["confirmed_at"] is not None
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_awaiting_confirmation")

    payouts.payout_run_execute(run=PayoutRun.objects.get(pk=run.pk))  # what the worker does on commit
    detail = staff.get(f"/api/v1/payout-runs/{run.id}").json()
    [paid] = detail["items"]
    assert (detail["status"], paid["status"], paid["stripe_transfer_id"].startswith("tr_")) == ("done", "paid", True)
    assert paid["paid_at"] is not None


def test_staff_cancel_a_run_and_cannot_cancel_it_twice(world):
    staff = world.clients["staff"]

    cancelled = _post(staff, f"/api/v1/payout-runs/{world.waiting_run.id}/cancel")
    again = _post(staff, f"/api/v1/payout-runs/{world.waiting_run.id}/cancel")

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert cancelled.json()["items"][0]["failure_code"] == "cancelled"
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_cancellable")
    assert not Commission.objects.filter(payout_item__run=world.waiting_run).exists()


def test_run_lists_filter_by_status_and_program(world):
    staff = world.clients["staff"]
    rows = staff.get("/api/v1/payout-runs").json()["results"]
    done = staff.get("/api/v1/payout-runs?status=done").json()["results"]
    none = staff.get(f"/api/v1/payout-runs?program={world.program.id + 1000}")

    assert [r["id"] for r in rows] == [world.waiting_run.id, world.paid_run.id]
    assert "items" not in rows[0] and rows[1]["total"] == "10.00"
    assert [r["id"] for r in done] == [world.paid_run.id]
    assert none.status_code == 400 and "program" in none.json()["error"]["fields"]


def test_items_list_filters_and_detail(world):
    staff = world.clients["staff"]
    paid = world.paid_run.items.get()
    pending = world.waiting_run.items.get()

    everything = staff.get("/api/v1/payout-items").json()["results"]
    of_run = staff.get(f"/api/v1/payout-items?run={world.paid_run.id}").json()["results"]
    by_status = staff.get("/api/v1/payout-items?status=pending").json()["results"]
    of_other = staff.get(f"/api/v1/payout-items?affiliate={world.other.id}").json()["results"]
    detail = staff.get(f"/api/v1/payout-items/{paid.id}").json()

    assert [i["id"] for i in everything] == [pending.id, paid.id]
    assert [i["id"] for i in of_run] == [paid.id] and [i["id"] for i in by_status] == [pending.id]
    assert of_other == []
    assert detail == {
        "id": paid.id,
        "run": world.paid_run.id,
        "affiliate": world.aff.id,
        "affiliate_email": "aff@example.org",
        "amount": "10.00",
        "currency": "USD",
        "status": "paid",
        "attempts": 1,
        "failure_code": "",
        "failure_message": "",
        "stripe_transfer_id": paid.stripe_transfer_id,
        "paid_at": _iso(paid.paid_at),
        "reversed_at": None,
        "reversal_reason": "",
        "created_at": _iso(paid.created_at),
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"program": "main"},
        {"program": 10**6},
        {"program": True},
        {"program": None},
        {"program": [1]},
        {"program": "{program}", "confirm": "maybe"},
        [],
    ],
)
def test_bad_run_bodies_are_refused_and_write_nothing(world, body):
    if isinstance(body, dict) and body.get("program") == "{program}":
        body = dict(body, program=world.program.id)
    before = (PayoutRun.objects.count(), PayoutItem.objects.count())

    response = _post(world.clients["staff"], "/api/v1/payout-runs", body)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert (PayoutRun.objects.count(), PayoutItem.objects.count()) == before


def test_staff_reverse_a_paid_item_and_the_affiliate_sees_why(world, double):
    staff = world.clients["staff"]
    paid = world.paid_run.items.get()

    reversed_ = _post(staff, f"/api/v1/payout-items/{paid.id}/reverse", {"reason": "Orders were fraudulent."})
    again = _post(staff, f"/api/v1/payout-items/{paid.id}/reverse", {"reason": "Orders were fraudulent."})

    assert reversed_.status_code == 200, reversed_.content
    body = reversed_.json()
    assert (body["status"], body["reversal_reason"], body["reversed_at"] is not None) == (
        "reversed",
        "Orders were fraudulent.",
        True,
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_reversed")
    assert staff.get("/api/v1/ledger").json() == {"balances": [{"currency": "USD", "balance": "50.00"}]}
    assert set(Commission.objects.filter(payout_item=paid).values_list("status", flat=True)) == {"reversed"}
    mine = world.clients["affiliate"].get("/api/v1/my/payouts").json()["results"]
    assert [(r["id"], r["status"], r["reversal_reason"]) for r in mine if r["id"] == paid.id] == [
        (paid.id, "reversed", "Orders were fraudulent.")
    ]
    transfer = requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"][0]
    assert transfer["amount_reversed"] == 1000


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": 5}, {"reason": "x" * 501}, []])
def test_bad_reversal_bodies_are_refused_and_reverse_nothing(world, body):
    paid = world.paid_run.items.get()
    response = _post(world.clients["staff"], f"/api/v1/payout-items/{paid.id}/reverse", body)
    assert response.status_code == 400, response.content
    assert PayoutItem.objects.get(pk=paid.pk).status == "paid"
    assert not LedgerEntry.objects.filter(kind="reversal").exists()


def test_only_a_paid_item_can_be_reversed(world):
    pending = world.waiting_run.items.get()
    response = _post(world.clients["staff"], f"/api/v1/payout-items/{pending.id}/reverse", {"reason": "no"})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_paid")
    assert PayoutItem.objects.get(pk=pending.pk).status == "pending"


def test_reversal_with_stripe_down_answers_503_and_reverses_nothing(world, double):
    paid = world.paid_run.items.get()
    _stripe_fails(double, 503)

    response = _post(world.clients["staff"], f"/api/v1/payout-items/{paid.id}/reverse", {"reason": "fraud"})

    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_unavailable")
    assert response["Retry-After"] == "30"
    assert PayoutItem.objects.get(pk=paid.pk).status == "paid"
    assert not LedgerEntry.objects.filter(kind="reversal").exists()


# --- staff: ledger and funding ---------------------------------------------------------------


def test_ledger_balance_and_entries_newest_first(world):
    staff = world.clients["staff"]
    entries = list(LedgerEntry.objects.order_by("-id"))

    balance = staff.get("/api/v1/ledger").json()
    listed = staff.get("/api/v1/ledger/entries").json()
    transfers = staff.get("/api/v1/ledger/entries?kind=transfer").json()["results"]
    in_eur = staff.get("/api/v1/ledger/entries?currency=EUR").json()["results"]

    assert balance == {"balances": [{"currency": "USD", "balance": "40.00"}]}
    assert [(e["kind"], e["amount"], e["currency"]) for e in listed["results"]] == [
        ("transfer", "-10.00", "USD"),
        ("funding", "50.00", "USD"),
    ]
    assert listed["results"][0] == {
        "id": entries[0].id,
        "kind": "transfer",
        "amount": "-10.00",
        "currency": "USD",
        "reference": entries[0].reference,
        "stripe_id": "",
        "memo": entries[0].memo,
        "created_at": _iso(entries[0].created_at),
    }
    assert [e["kind"] for e in transfers] == ["transfer"] and in_eur == []


def test_funding_through_checkout_credits_the_balance_once(world, double):
    staff = world.clients["staff"]

    started = _post(staff, "/api/v1/fundings", {"amount": "250.00", "currency": "usd"})

    assert started.status_code == 201, started.content
    body = started.json()
    made = Funding.objects.get(pk=body["id"])
    assert body == {
        "id": made.id,
        "amount": "250.00",
        "currency": "USD",
        "status": "open",
        "url": made.url,
        "created_at": _iso(made.created_at),
        "paid_at": None,
    }
    assert made.url.startswith(double.url) and made.created_by.role == "owner"

    # the business pays on Stripe's page and comes back to the console on this tenant's host
    paid_page = requests.post(made.url, timeout=5, allow_redirects=False)
    assert paid_page.headers["Location"].startswith(f"http://{world.host}/console/payouts/funding?checkout=success")

    refreshed = _post(staff, f"/api/v1/fundings/{made.id}/refresh")
    again = _post(staff, f"/api/v1/fundings/{made.id}/refresh")

    assert (refreshed.json()["status"], again.json()["status"]) == ("paid", "paid")
    assert staff.get(f"/api/v1/fundings/{made.id}").json()["paid_at"] is not None
    assert staff.get("/api/v1/ledger").json() == {"balances": [{"currency": "USD", "balance": "290.00"}]}
    assert [f["id"] for f in staff.get("/api/v1/fundings?status=paid").json()["results"]] == [made.id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "1.234", "currency": "USD"}, "amount"),
        ({"amount": "-5.00", "currency": "USD"}, "amount"),
        ({"amount": "0", "currency": "USD"}, "amount"),
        ({"amount": "1e3", "currency": "USD"}, "amount"),
        ({"amount": "NaN", "currency": "USD"}, "amount"),
        ({"amount": 5, "currency": "USD"}, "amount"),
        ({"amount": 5.5, "currency": "USD"}, "amount"),
        ({"amount": "2000000000.00", "currency": "USD"}, "amount"),
        ({"amount": "5.00", "currency": "XYZ"}, "currency"),
        ({"amount": "5.00", "currency": "EURO"}, "currency"),
        ({"amount": "5.00"}, "currency"),
        ({"currency": "USD"}, "amount"),
        ({"amount": "5.5", "currency": "JPY"}, "amount"),
    ],
)
def test_bad_funding_bodies_are_refused_before_stripe_and_write_nothing(world, double, body, field):
    sessions = double.state.summary()["counts"].get("checkout_sessions", 0)

    response = _post(world.clients["staff"], "/api/v1/fundings", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert Funding.objects.count() == 1  # the world's own
    assert double.state.summary()["counts"].get("checkout_sessions", 0) == sessions


def _stripe_fails(double: RunningDouble, status: int, path: str = "/v1/*") -> None:
    rule = {"mode": "error", "status": status, "path": path}
    requests.post(f"{double.url}/_double/faults", json={"rules": [rule]}, timeout=5).raise_for_status()


def test_stripe_down_answers_503_stripe_unavailable_and_writes_nothing(world, double):
    staff = world.clients["staff"]
    _stripe_fails(double, 503)

    started = _post(staff, "/api/v1/fundings", {"amount": "20.00", "currency": "USD"})
    refreshed = _post(staff, f"/api/v1/fundings/{world.funding.id}/refresh")
    onboarding = _post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding", {})

    for response in (started, refreshed, onboarding):
        assert response.status_code == 503, response.content
        assert response.json()["error"]["code"] == "stripe_unavailable"
        assert response["Retry-After"] == "30"
    assert Funding.objects.count() == 1 and Funding.objects.get().status == "open"
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()


def test_stripe_unreachable_answers_503_and_writes_nothing(world):
    gateway._client.cache_clear()
    with override_settings(STRIPE_API_BASE="http://127.0.0.1:9"):  # nothing listens there
        response = _post(world.clients["staff"], "/api/v1/fundings", {"amount": "20.00", "currency": "USD"})
    gateway._client.cache_clear()

    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_unavailable")
    assert Funding.objects.count() == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (gateway.GatewayError(code="connection", message="x", transient=True), (503, "stripe_unavailable")),
        (gateway.GatewayError(code="rate_limit", message="x", transient=True), (503, "stripe_unavailable")),
        (gateway.GatewayError(code="not_configured", message="x", transient=False), (503, "payouts_not_configured")),
        (
            gateway.GatewayError(code="account_invalid", message="x", transient=False, refused_request=True),
            (422, "stripe_refused"),
        ),
        (gateway.GatewayError(code="idempotency_key_in_use", message="x", transient=False), (409, "stripe_busy")),
        (gateway.GatewayError(code="AuthenticationError", message="x", transient=False), (502, "stripe_error")),
    ],
)
def test_every_stripe_failure_maps_to_a_stable_code_never_500(error, expected):
    mapped = billing_error_from(error)
    assert (mapped.status, mapped.code) == expected


def test_stripe_refusing_the_platform_answers_502(world, double):
    _stripe_fails(double, 401)
    response = _post(world.clients["staff"], "/api/v1/fundings", {"amount": "20.00", "currency": "USD"})
    assert (response.status_code, response.json()["error"]["code"]) == (502, "stripe_error")
    assert Funding.objects.count() == 1


# --- affiliates: payout account --------------------------------------------------------------


def test_an_affiliate_sets_up_its_payout_account(world, double):
    client = world.clients["other_affiliate"]
    assert client.get("/api/v1/payout-account").json()["error"]["code"] == "no_payout_account"

    started = _post(client, "/api/v1/payout-account/onboarding", {"country": "de"})

    assert started.status_code == 200, started.content
    assert started.json()["url"].startswith(f"{double.url}/_double/onboarding/")
    assert started.json()["expires_at"] is not None
    account = ConnectedAccount.objects.get(tenant=world.tenant, affiliate_id=world.other.id)
    assert account.country == "DE"
    status = client.get("/api/v1/payout-account").json()
    assert status == {
        "affiliate": world.other.id,
        "stripe_account": account.stripe_id,
        "country": "DE",
        "details_submitted": False,
        "payouts_enabled": False,
        "transfers": account.transfers,
        "can_receive_transfers": False,
        "requirements_due": account.requirements_due,
        "disabled_reason": account.disabled_reason,
    }
    assert _post(client, "/api/v1/payout-account/dashboard-link").json()["error"]["code"] == "not_onboarded"

    # the affiliate finishes Stripe's pages and comes back
    requests.post(f"{double.url}/_double/accounts/{account.stripe_id}/complete", json={}, timeout=5)
    refreshed = _post(client, "/api/v1/payout-account/refresh")
    dashboard = _post(client, "/api/v1/payout-account/dashboard-link")

    assert refreshed.json()["can_receive_transfers"] is True and refreshed.json()["requirements_due"] == []
    assert dashboard.status_code == 200 and dashboard.json()["url"].startswith(f"{double.url}/_double/dashboard/")
    again = _post(client, "/api/v1/payout-account/onboarding", {"country": "FR"})  # the account exists: kept
    assert again.status_code == 200 and ConnectedAccount.objects.get(pk=account.pk).country == "DE"


@override_settings(PAYOUT_DEFAULT_COUNTRY="GB")
def test_onboarding_without_a_country_uses_the_platforms(world):
    assert _post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding").status_code == 200
    assert ConnectedAccount.objects.get(affiliate_id=world.other.id, tenant=world.tenant).country == "GB"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "usa"}, "country"),
        ({"country": 1}, "country"),
        ({"affiliate": "me"}, "affiliate"),
        ({"affiliate": 0}, "affiliate"),
    ],
)
def test_bad_onboarding_bodies_are_refused_and_create_nothing(world, double, body, field):
    accounts = double.state.summary()["counts"].get("accounts", 0)

    response = _post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()
    assert double.state.summary()["counts"].get("accounts", 0) == accounts


def test_an_affiliate_not_approved_cannot_set_up_payouts(world):
    Affiliate.objects.filter(pk=world.other.pk).update(status=Affiliate.Status.SUSPENDED)
    response = _post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "affiliate_not_approved")
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()


def test_an_affiliate_in_several_programs_names_which_and_only_its_own(world):
    second = factories.program(slug="second")
    affiliate_services.affiliate_apply(program=second, user=world.aff.user)
    client = world.clients["affiliate"]

    unnamed = client.get("/api/v1/payout-account")
    named = client.get(f"/api/v1/payout-account?affiliate={world.aff.id}")
    someone_else = client.get(f"/api/v1/payout-account?affiliate={world.other.id}")
    onboarding_for_someone_else = _post(client, "/api/v1/payout-account/onboarding", {"affiliate": world.other.id})

    assert (unnamed.status_code, unnamed.json()["error"]["code"]) == (400, "affiliate_required")
    assert (named.status_code, named.json()["affiliate"]) == (200, world.aff.id)
    assert (someone_else.status_code, someone_else.json()["error"]["code"]) == (404, "not_found")
    assert onboarding_for_someone_else.status_code == 404
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()


# --- affiliates: their payouts ---------------------------------------------------------------


def test_an_affiliate_sees_its_own_payouts_with_their_commissions(world):
    paid = world.paid_run.items.get()
    pending = world.waiting_run.items.get()

    mine = world.clients["affiliate"].get("/api/v1/my/payouts").json()

    def row(item: PayoutItem) -> dict[str, Any]:
        [commission] = Commission.objects.filter(payout_item=item)
        return {
            "id": item.id,
            "run": item.run_id,
            "program": world.program.id,
            "affiliate": world.aff.id,
            "amount": money(item),
            "currency": "USD",
            "status": item.status,
            "failure_code": "",
            "failure_message": "",
            "stripe_transfer_id": item.stripe_transfer_id,
            "paid_at": _iso(item.paid_at),
            "reversed_at": None,
            "reversal_reason": "",
            "created_at": _iso(item.created_at),
            "commissions": [
                {
                    "id": commission.id,
                    "conversion": commission.conversion_id,
                    "kind": "commission",
                    "amount": money(item),
                }
            ],
        }

    assert mine == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [row(pending), row(paid)],
        "rolled_over": [],
        "bank_payouts": [],
    }


def test_an_affiliate_sees_when_its_money_reached_the_bank_and_no_one_elses(world):
    # given Stripe's payout.* reports for both affiliates (what billing.webhooks stores)
    mine = BankPayout.objects.create(
        stripe_id="po_mine",
        affiliate=world.aff,
        account="acct_mine",
        amount_minor=8_000,
        currency="USD",
        status="paid",
        arrival_date=date(2026, 11, 20),
    )
    BankPayout.objects.create(
        stripe_id="po_theirs",
        affiliate=world.other,
        account="acct_theirs",
        amount_minor=300,
        currency="USD",
        status="failed",
        failure_code="account_closed",
    )

    seen = world.clients["affiliate"].get("/api/v1/my/payouts").json()["bank_payouts"]

    assert seen == [
        {
            "stripe_id": "po_mine",
            "affiliate": world.aff.id,
            "amount": "80.00",
            "currency": "USD",
            "status": "paid",
            "arrival_date": "2026-11-20",
            "failure_code": "",
            "failure_message": "",
            "updated_at": _iso(mine.updated_at),
        }
    ]
    theirs = world.clients["other_affiliate"].get("/api/v1/my/payouts").json()["bank_payouts"]
    assert [(b["stripe_id"], b["status"]) for b in theirs] == [("po_theirs", "failed")]


def money(item: PayoutItem) -> str:
    return f"{item.amount_minor // 100}.{item.amount_minor % 100:02d}"


def test_an_affiliate_sees_why_it_rolled_over_and_never_anothers_payouts(world):
    theirs = world.clients["other_affiliate"].get("/api/v1/my/payouts").json()

    assert theirs == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
        "rolled_over": [
            {
                "affiliate": world.other.id,
                "program": world.program.id,
                "run": world.waiting_run.id,
                "run_created_at": _iso(world.waiting_run.created_at),
                "amount": "3.00",
                "currency": "USD",
                "reason": "below_threshold",
                "message": "What you are owed is below the program's payout threshold of 5.00 USD.",
            }
        ],
        "bank_payouts": [],
    }
    csv_body = b"".join(world.clients["other_affiliate"].get("/api/v1/my/payouts.csv").streaming_content)
    assert csv_body.decode() == HEADER

    # a cancelled run says nothing: the latest run that stands left nothing of theirs over
    payouts.payout_run_cancel(run=world.waiting_run)
    assert world.clients["other_affiliate"].get("/api/v1/my/payouts").json()["rolled_over"] == []


HEADER = (
    "payout_id,run,program,status,amount,currency,paid_at,stripe_transfer_id,commission_ids,conversion_ids,"
    "reversed_at,reversal_reason\r\n"
)


def test_my_payouts_csv_is_exact(world):
    paid = world.paid_run.items.get()
    pending = world.waiting_run.items.get()
    [c_paid] = Commission.objects.filter(payout_item=paid)
    [c_pending] = Commission.objects.filter(payout_item=pending)

    response = world.clients["affiliate"].get("/api/v1/my/payouts.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="payouts.csv"'
    body = b"".join(response.streaming_content).decode()
    p = world.program.id
    assert body == HEADER + (
        f"{pending.id},{world.waiting_run.id},{p},pending,5.00,USD,,,{c_pending.id},{c_pending.conversion_id},,\r\n"
        f"{paid.id},{world.paid_run.id},{p},paid,10.00,USD,{paid.paid_at.isoformat()},{paid.stripe_transfer_id},"
        f"{c_paid.id},{c_paid.conversion_id},,\r\n"
    )
    assert list(csv.reader(io.StringIO(body)))[1][0] == str(pending.id)
