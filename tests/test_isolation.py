"""Tenants never see each other: data, credentials and sessions stay in their own schema."""

from django.core.cache import cache
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from tests.support.tenants import OWNER_PASSWORD, host_of


def _login(client, email: str, password: str = OWNER_PASSWORD):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


def test_a_row_created_in_tenant_a_is_invisible_from_tenant_b(make_tenant):
    a, b = make_tenant(), make_tenant()
    with tenant_context(a.tenant):
        User.objects.create_user(email="only-in-a@x.test", password="x" * 12)
        assert User.objects.filter(email="only-in-a@x.test").count() == 1
    with tenant_context(b.tenant):
        assert not User.objects.filter(email="only-in-a@x.test").exists()
        assert list(User.objects.values_list("email", flat=True)) == [b.owner.email]
    with schema_context("public"):
        assert not User.objects.filter(email="only-in-a@x.test").exists()


def test_owner_logs_in_on_their_subdomain_and_not_on_another(make_tenant, client_at):
    a, b = make_tenant(), make_tenant()
    on_a = client_at(host_of(a))
    assert _login(on_a, a.owner.email).status_code == 302
    assert on_a.get("/api/v1/me").json() == {
        "id": a.owner.pk,
        "email": a.owner.email,
        "name": "",
        "role": "owner",
        "tenant": a.tenant.slug,
        "affiliations": [],
    }

    on_b = client_at(host_of(b))
    refused = _login(on_b, a.owner.email)
    assert refused.status_code == 200  # the login form again, with an error
    assert "Please enter the correct email" in refused.content.decode()
    assert on_b.get("/api/v1/me").status_code == 401


def test_a_session_cookie_of_a_is_not_accepted_on_b(make_tenant, client_at):
    a, b = make_tenant(), make_tenant()
    on_a = client_at(host_of(a))
    _login(on_a, a.owner.email)
    session_cookie = on_a.cookies["sessionid"].value

    on_b = client_at(host_of(b))
    on_b.cookies["sessionid"] = session_cookie
    response = on_b.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert on_b.get("/admin/").status_code == 302  # to the login page
    # The cookie still works where it was issued.
    assert on_a.get("/api/v1/me").json()["tenant"] == a.tenant.slug


def test_platform_staff_of_the_public_schema_cannot_log_into_a_tenant(make_tenant, client_at, platform_ready):
    User.objects.create_superuser(email="staff@platform.test", password=OWNER_PASSWORD)  # public schema
    tenant = make_tenant()
    on_tenant = client_at(host_of(tenant))
    assert _login(on_tenant, "staff@platform.test").status_code == 200
    assert on_tenant.get("/api/v1/me").status_code == 401


def test_cache_keys_are_prefixed_by_tenant(make_tenant):
    a, b = make_tenant(), make_tenant()
    with tenant_context(a.tenant):
        cache.set("greeting", "hello from a", 30)
    with tenant_context(b.tenant):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from b", 30)
    with tenant_context(a.tenant):
        assert cache.get("greeting") == "hello from a"
