from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import host_of
from tenants import services


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


def test_cached_routing_runs_no_domain_query_and_no_redundant_search_path(make_tenant, client_at):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    client.get("/api/v1/ping")  # warm the cache and the connection's search_path
    client.get("/api/v1/me")

    with CaptureQueriesContext(connection) as ctx:
        client.get("/api/v1/ping")
        client.get("/api/v1/ping")
    assert ctx.captured_queries == []

    with CaptureQueriesContext(connection) as ctx:
        client.get("/api/v1/me")  # anonymous, but reads no session: no queries at all
        client.get("/admin/login/")
    assert not [q for q in ctx.captured_queries if "search_path" in q["sql"]]
    assert not [q for q in ctx.captured_queries if "tenants_domain" in q["sql"]]


def test_switching_tenants_sets_the_search_path_once_per_switch(make_tenant, client_at):
    a, b = make_tenant(), make_tenant()
    session_a, session_b = client_at(host_of(a)), client_at(host_of(b))
    session_a.get("/api/v1/ping")
    session_b.get("/api/v1/ping")
    with CaptureQueriesContext(connection) as ctx:
        session_a.get("/admin/login/")
        session_a.get("/admin/login/")
        session_b.get("/admin/login/")
    sets = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SET search_path")]
    # Nothing on those pages reads the database except through a tenant switch.
    assert len(sets) <= 2
