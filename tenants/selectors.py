"""Reads for tenants. The host -> tenant lookup runs on every request, so it is cached twice:
in each process (tenants.routing_cache, invalidated through Redis pub/sub) and in Redis."""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.core.cache import caches
from django_tenants.utils import schema_context
from redis.exceptions import RedisError

from tenants.models import Domain, Tenant
from tenants.routing_cache import routes

logger = logging.getLogger(__name__)

# A dedicated cache alias with a plain key function: routing happens before a tenant is known,
# so the key must not carry the schema of whatever tenant the connection served last.
_ROUTES = "routing"
_MISSING = "-"
_FIELDS = ("id", "schema_name", "name", "slug", "status", "kind")


def _route_key(host: str) -> str:
    return f"tenant-route:{host}"


def _version_key(host: str) -> str:
    return f"tenant-route-version:{host}"


def _as_tenant(value: tuple | str) -> Tenant | None:
    return None if value == _MISSING else _tenant_of(tuple(value))


@functools.lru_cache(maxsize=4096)
def _tenant_of(value: tuple) -> Tenant:
    # One instance per distinct route value, shared by the requests of this process: building a
    # model instance costs about 5 µs, a few percent of a referral redirect. Nothing assigns to
    # a routed tenant's fields, and any change to them (a suspension) is a new value.
    return Tenant(**dict(zip(_FIELDS, value, strict=True)))


def tenant_for_host(*, host: str) -> Tenant | None:
    """The tenant that serves `host` (a bare hostname, lowercase, no port), or None.

    Shared entries carry the host's route version as it was before the database was read;
    invalidation bumps the version, so an entry written by a lookup that raced a suspension
    is never taken for current."""
    local = routes.get(host)
    if local is not None:
        return _as_tenant(local)
    generation = routes.generation()
    shared = caches[_ROUTES]
    key, version_key = _route_key(host), _version_key(host)
    try:
        found = shared.get_many([key, version_key])
    except RedisError:
        # Without Redis, route from the database rather than fail every request.
        logger.warning("routing cache unavailable; reading the database", exc_info=True)
        found = None
    version = found.get(version_key) if found is not None else None
    entry = found.get(key) if found is not None else None
    if entry is not None and entry[0] == version:
        value = entry[1]
    else:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            domain = Domain.objects.select_related("tenant").filter(domain=host).first()
        tenant = domain.tenant if domain is not None else None
        value = _MISSING if tenant is None else tuple(getattr(tenant, f) for f in _FIELDS)
        if found is None:
            return tenant
        try:
            # Unknown hosts are cached briefly too, so a flood of them does not reach the database.
            shared.set(key, (version, value), timeout=settings.TENANT_ROUTING_CACHE_SECONDS if tenant else 30)
        except RedisError:
            return tenant
    routes.put(host, value, generation=generation)
    return _as_tenant(value)


def tenant_hosts(*, tenant: Tenant) -> list[str]:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return list(Domain.objects.filter(tenant=tenant).values_list("domain", flat=True))


def tenant_url(*, tenant: Tenant, path: str = "/") -> str:
    host = f"{tenant.slug}.{settings.PLATFORM_DOMAIN}"
    port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
    return f"{settings.PLATFORM_SCHEME}://{host}{port}{path}"


def tenant_routes_forget(*, hosts: list[str]) -> None:
    """Drop cached routes; services call it when a suspension or a domain change commits."""
    if not hosts:
        return
    shared = caches[_ROUTES]
    for host in hosts:
        try:
            shared.incr(_version_key(host))
        except ValueError:  # first invalidation of this host; versions never expire
            shared.set(_version_key(host), 1, timeout=None)
    shared.delete_many([_route_key(h) for h in hosts])
    routes.forget(hosts)
