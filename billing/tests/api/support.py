"""What the payouts API tests share: the world they run in and the callers' expected answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from django.db import connection
from django.test import Client
from rest_framework import serializers

from affiliates import services as affiliate_services
from affiliates.models import Affiliate, Program
from affiliates.tests import factories
from billing import funding, payouts
from billing.models import Funding, PayoutRun
from billing.tests import factories as payout_factories
from devtools.stripe_double import RunningDouble
from tenants.services import ProvisionedTenant
from tests.support.tenants import host_of


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


def session(host: str, user) -> Client:
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    return client


def cookies(client: Client) -> str:
    return client.cookies.output(header="", sep=";")


def key_client(host: str, secret: str) -> Client:
    return Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {secret}")


def world_build(reused_tenant: Callable[[], ProvisionedTenant], double: RunningDouble) -> World:
    """Tenant A (whose schema it leaves active) with a paid run, a run waiting for confirmation, an
    open funding, and tenant B."""
    # Tenant B: its staff session and key must mean nothing on tenant A's host, and A's staff
    # session nothing on B's.
    b = reused_tenant()
    connection.set_tenant(b.tenant)
    b_host = host_of(b)
    b_key = affiliate_services.api_key_create(name="b", scopes=["read", "conversions:write", "track"], by=b.owner)
    b_staff = session(b_host, b.owner)

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
    staff = session(host, a.owner)
    clients = {
        "anonymous": Client(HTTP_HOST=host),
        "affiliate": session(host, aff.user),
        "other_affiliate": session(host, other.user),
        "staff": staff,
        **{name: key_client(host, secret) for name, secret in keys.items()},
        "other_tenant_staff": Client(HTTP_HOST=host, HTTP_COOKIE=cookies(b_staff)),
        "other_tenant_key": key_client(host, b_key.secret),
        "staff_on_other_host": Client(HTTP_HOST=b_host, HTTP_COOKIE=cookies(staff)),
    }
    return World(
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


def iso(value) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def post(client: Client, url: str, body: Any = None):
    return client.post(url, body if body is not None else {}, content_type="application/json")


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


def expect(allowed: dict[str, int]) -> dict[str, int]:
    # People of this tenant with the wrong role and every API key: 403. Anyone not signed in
    # here (another tenant's session or key, this tenant's session on another host): 401.
    out = {who: 403 for who in ALL}
    out.update({who: 401 for who in ("anonymous", "other_tenant_staff", "other_tenant_key", "staff_on_other_host")})
    out.update(allowed)
    return out


STAFF = {"staff": 200}


def stripe_fails(double: RunningDouble, status: int, path: str = "/v1/*") -> None:
    rule = {"mode": "error", "status": status, "path": path}
    requests.post(f"{double.url}/_double/faults", json={"rules": [rule]}, timeout=5).raise_for_status()
