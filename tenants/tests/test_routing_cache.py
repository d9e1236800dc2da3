"""The in-process route cache: immediate invalidation across processes, and no stale entry
from a lookup that raced an invalidation."""

import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import ConnectionError as RedisConnectionError

from tenants import selectors
from tenants.routing_cache import routes
from tests.support.tenants import host_of

ROOT = Path(__file__).resolve().parents[2]


def _warm(host: str):
    assert routes.wait_until_subscribed(timeout=5)
    tenant = selectors.tenant_for_host(host=host)
    assert routes.get(host) is not None
    return tenant


def test_an_invalidation_published_by_another_process_evicts_the_local_route(make_tenant):
    host = host_of(make_tenant())
    _warm(host)

    code = (
        "import django; django.setup(); from tenants.selectors import tenant_routes_forget; "
        f"tenant_routes_forget(hosts=[{host!r}])"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        env={
            **__import__("os").environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
    )

    deadline = time.monotonic() + 5
    while routes.get(host) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert routes.get(host) is None
    assert caches["routing"].get(f"tenant-route:{host}") is None


def test_a_shared_entry_written_by_a_lookup_that_raced_an_invalidation_is_not_used(make_tenant, monkeypatch):
    provisioned = make_tenant()
    host = host_of(provisioned)
    selectors.tenant_routes_forget(hosts=[host])
    shared = caches["routing"]
    real_first = selectors.Domain.objects.select_related

    def read_then_invalidate(*args, **kwargs):
        # The database answers "active"; the suspension commits before the lookup writes.
        queryset = real_first(*args, **kwargs)
        selectors.tenant_routes_forget(hosts=[host])
        return queryset

    monkeypatch.setattr(selectors.Domain.objects, "select_related", read_then_invalidate)
    selectors.tenant_for_host(host=host)
    monkeypatch.undo()

    version, _ = shared.get(f"tenant-route:{host}")
    assert version != shared.get(f"tenant-route-version:{host}")
    assert routes.get(host) is None  # not kept locally either
    selectors.Tenant.objects.filter(pk=provisioned.tenant.pk).update(status="suspended")
    assert selectors.tenant_for_host(host=host).status == "suspended"


def test_a_lookup_that_raced_an_invalidation_is_not_stored(make_tenant):
    host = host_of(make_tenant())
    assert routes.wait_until_subscribed(timeout=5)
    routes.forget([host])

    generation = routes.generation()
    routes._apply(host)  # an invalidation lands while the lookup reads the database
    routes.put(host, ("stale",), generation=generation)
    assert routes.get(host) is None


def test_nothing_is_served_from_memory_while_unsubscribed(make_tenant, monkeypatch):
    host = host_of(make_tenant())
    _warm(host)
    monkeypatch.setattr(routes, "_ensure_listener", lambda: None)
    routes._subscribed.clear()
    try:
        assert routes.get(host) is None
        routes.put(host, ("x",), generation=routes._generation)
        assert routes._entries.get(host, (0, None))[1] != ("x",)
    finally:
        routes._subscribed.set()


def test_routing_falls_back_to_the_database_when_redis_is_down(make_tenant, monkeypatch):
    provisioned = make_tenant()
    host = host_of(provisioned)
    routes.forget([host])

    def down(*args, **kwargs):
        raise RedisConnectionError("redis is down")

    shared = caches["routing"]
    monkeypatch.setattr(shared, "get", down)
    monkeypatch.setattr(shared, "set", down)
    tenant = selectors.tenant_for_host(host=host)
    assert tenant is not None and tenant.schema_name == provisioned.tenant.schema_name


def test_unknown_host_then_signup_routes_at_once(
    platform_ready, client_at, make_tenant, django_capture_on_commit_callbacks
):
    from tests.support.tenants import unique_slug

    slug = unique_slug("late")
    client = client_at(f"{slug}.{settings.PLATFORM_DOMAIN}")
    assert client.get("/api/v1/ping").status_code == 404  # cached as unknown
    with django_capture_on_commit_callbacks(execute=True):
        make_tenant(slug=slug)
    assert client.get("/api/v1/ping").status_code == 200
