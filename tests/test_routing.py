import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import services
from tests.support.caches import caches_at
from tests.support.tenants import OWNER_PASSWORD, host_of


def test_unknown_subdomain_gets_a_plain_404_not_the_public_site(platform_ready, client_at):
    response = client_at("nobody-here.localhost").get("/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "There is no business at this address." in body
    assert "Start your program" not in body


def test_unknown_subdomain_api_gets_a_json_404(platform_ready, client_at):
    response = client_at("nobody-here.localhost").get("/api/v1/ping")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"


@pytest.mark.parametrize("host", ["under_score.localhost", "a..b.localhost", "bad_host.localhost:8000"])
def test_a_malformed_host_in_the_platform_domain_gets_the_tenant_404_page(platform_ready, client_at, host):
    # Django refuses such a Host (underscores are not valid in host names) with its own HTML 400
    # page; no tenant can be named so, which is what the platform's 404 page says.
    response = client_at(host).get("/")

    assert response.status_code == 404
    assert "There is no business at this address." in response.content.decode()


def test_a_malformed_host_gets_a_json_404_on_the_api(platform_ready, client_at):
    response = client_at("under_score.localhost").get("/api/v1/ping")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"


def test_host_outside_the_platform_domain_is_refused(platform_ready, client_at):
    assert client_at("evil.example.com").get("/").status_code == 400


def test_public_and_tenant_hosts_route_to_their_own_schema(make_tenant, client_at):
    tenant = make_tenant()
    assert client_at("localhost").get("/api/v1/ping").json() == {"status": "ok", "schema": "public"}
    assert client_at(host_of(tenant)).get("/api/v1/ping").json() == {
        "status": "ok",
        "schema": tenant.tenant.schema_name,
    }


def test_suspended_tenant_gets_403_on_every_route_and_reactivation_restores_it(
    make_tenant, client_at, django_capture_on_commit_callbacks
):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    assert client.get("/api/v1/ping").status_code == 200  # warms the routing cache

    # The cached route is dropped when the suspension commits.
    with django_capture_on_commit_callbacks(execute=True):
        services.tenant_suspend(tenant=provisioned.tenant, reason="unpaid")
    for path in ["/", "/admin/", "/admin/login/", "/api/v1/ping", "/api/v1/me", "/api/schema/", "/auth/handover"]:
        response = client.get(path)
        assert response.status_code == 403, path
    assert client.get("/api/v1/ping").json()["error"]["code"] == "tenant_suspended"
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403
    assert "suspended" in client.get("/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        services.tenant_reactivate(tenant=provisioned.tenant)
    assert client.get("/api/v1/ping").status_code == 200


def _login(client, email: str) -> None:
    response = client.post("/admin/login/", {"username": email, "password": OWNER_PASSWORD})
    assert response.status_code == 302


def test_cached_routing_runs_no_domain_query_and_no_redundant_search_path(make_tenant, client_at):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    _login(client, provisioned.owner.email)
    client.get("/api/v1/me")  # warm the routing cache and the connection's search_path

    with CaptureQueriesContext(connection) as ctx:
        client.get("/api/v1/ping")
        client.get("/api/v1/ping")
    assert ctx.captured_queries == []

    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/api/v1/me").status_code == 200
        assert client.get("/api/v1/me").status_code == 200
    statements = [q["sql"] for q in ctx.captured_queries]
    # Per request: the session row and the user row, nothing for routing.
    assert len(statements) == 4, statements
    assert not [s for s in statements if "search_path" in s or "tenants_domain" in s]


def test_switching_tenants_sets_the_search_path_once_per_switch(make_tenant, client_at):
    a, b = make_tenant(), make_tenant()
    on_a, on_b = client_at(host_of(a)), client_at(host_of(b))
    _login(on_a, a.owner.email)
    _login(on_b, b.owner.email)
    on_b.get("/api/v1/me")
    on_a.get("/api/v1/me")  # the connection now points at A

    with CaptureQueriesContext(connection) as ctx:
        assert on_a.get("/api/v1/me").json()["tenant"] == a.tenant.slug
        assert on_a.get("/api/v1/me").json()["tenant"] == a.tenant.slug
        assert on_b.get("/api/v1/me").json()["tenant"] == b.tenant.slug
        assert on_a.get("/api/v1/me").json()["tenant"] == a.tenant.slug
    sets = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SET search_path")]
    assert sets == [
        f'SET search_path = "{b.tenant.schema_name}","public"',
        f'SET search_path = "{a.tenant.schema_name}","public"',
    ]


def test_a_hung_redis_delays_routing_by_its_timeout_not_for_ever(make_tenant, client_at, hung_redis_url, monkeypatch):
    """Routes missing from the process's memory are read from the shared cache; a Redis that
    accepts and never answers must cost its timeout, then the database answers."""
    import time

    from tenants import selectors

    host = host_of(make_tenant())
    monkeypatch.setattr(selectors.routes, "get", lambda key: None)  # as while not subscribed
    with caches_at(hung_redis_url):
        started = time.monotonic()
        response = client_at(host).get("/api/v1/ping")
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < 2.5
