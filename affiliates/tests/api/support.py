"""What the API tests share: the world they run in (a tenant with a program, two affiliates, staff,
API keys of each scope, and another tenant's session and key) and the callers' expected answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.utils import timezone

from affiliates import services
from affiliates.models import Affiliate, Conversion
from affiliates.tests import factories
from tenants.services import ProvisionedTenant
from tests.support.tenants import host_of


@dataclass
class World:
    host: str
    program: object
    aff: Affiliate
    other: Affiliate
    clients: dict[str, Client]
    keys: dict[str, str]


def session_client(host: str, user) -> Client:
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    return client


def key_client(host: str, secret: str) -> Client:
    return Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {secret}")


def conversion_for(world: World) -> Conversion:
    from affiliates import conversions

    visitor = uuid.uuid4()
    factories.click(world.aff, visitor=visitor, at=timezone.now() - timedelta(minutes=5))
    conversion, _ = conversions.conversion_record(
        program=world.program,
        external_id=f"o-{uuid.uuid4().hex[:6]}",
        event_type="purchase",
        amount="10.00",
        currency="USD",
        visitor_id=visitor,
    )
    return conversion


ALL = (
    "anonymous",
    "affiliate",
    "other_affiliate",
    "staff",
    "key_read",
    "key_write",
    "key_track",
    "other_tenant_staff",
    "other_tenant_key",
)


def expect(allowed: dict[str, int], denied_anon: int = 401) -> dict[str, int]:
    out = {who: 403 for who in ALL}
    out.update({"anonymous": denied_anon, "other_tenant_staff": denied_anon, "other_tenant_key": 401})
    out.update(allowed)
    return out


def world_build(reused_tenant: Callable[[], ProvisionedTenant]) -> World:
    """Tenant A, whose schema it leaves active, and tenant B, whose staff session and key must mean
    nothing on A's host."""
    # Tenant B: its staff session and its keys must mean nothing on tenant A's host.
    b = reused_tenant()
    connection.set_tenant(b.tenant)
    b_key = services.api_key_create(name="b", scopes=["read", "conversions:write", "track"], by=b.owner).secret
    b_staff = session_client(host_of(b), b.owner)

    a = reused_tenant()
    connection.set_tenant(a.tenant)
    host = host_of(a)
    program = factories.program(slug="main")
    aff, other = factories.affiliate(program, email="aff@example.org"), factories.affiliate(program)
    factories.rule(program, percent="10")
    keys = {
        scope: services.api_key_create(name=scope, scopes=[scope], by=a.owner).secret
        for scope in ("read", "conversions:write", "track")
    }
    clients = {
        "anonymous": Client(HTTP_HOST=host),
        "affiliate": session_client(host, aff.user),
        "other_affiliate": session_client(host, other.user),
        "staff": session_client(host, a.owner),
        "key_read": key_client(host, keys["read"]),
        "key_write": key_client(host, keys["conversions:write"]),
        "key_track": key_client(host, keys["track"]),
        "other_tenant_staff": Client(HTTP_HOST=host, **{"HTTP_COOKIE": b_staff.cookies.output(header="", sep=";")}),
        "other_tenant_key": key_client(host, b_key),
    }
    return World(host=host, program=program, aff=aff, other=other, clients=clients, keys=keys)
