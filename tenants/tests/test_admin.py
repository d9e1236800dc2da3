"""Platform staff manage tenants in the public admin; tenant staff get their own admin."""

import pytest
from django.conf import settings

from accounts.models import User
from tenants.models import Tenant
from tests.support.tenants import OWNER_PASSWORD, host_of


@pytest.fixture
def staff_client(platform_ready, client_at):
    User.objects.create_superuser(email="ops@platform.test", password=OWNER_PASSWORD)
    client = client_at(settings.PLATFORM_DOMAIN)
    assert client.login(username="ops@platform.test", password=OWNER_PASSWORD)
    return client


def test_platform_staff_list_and_search_tenants(staff_client, make_tenant):
    a = make_tenant(name="Zebra Stripes")
    b = make_tenant(name="Other Co")
    listing = staff_client.get("/admin/tenants/tenant/")
    assert listing.status_code == 200
    assert a.tenant.slug in listing.content.decode() and b.tenant.slug in listing.content.decode()
    found = staff_client.get("/admin/tenants/tenant/", {"q": "Zebra"}).content.decode()
    assert a.tenant.slug in found
    assert b.tenant.slug not in found


def test_platform_staff_suspend_and_reactivate(
    staff_client, make_tenant, client_at, django_capture_on_commit_callbacks
):
    provisioned = make_tenant()
    tenant_host = client_at(host_of(provisioned))
    assert tenant_host.get("/api/v1/ping").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [provisioned.tenant.pk]})
    assert Tenant.objects.get(pk=provisioned.tenant.pk).status == Tenant.Status.SUSPENDED
    assert tenant_host.get("/api/v1/ping").status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            "/admin/tenants/tenant/", {"action": "reactivate", "_selected_action": [provisioned.tenant.pk]}
        )
    assert Tenant.objects.get(pk=provisioned.tenant.pk).status == Tenant.Status.ACTIVE
    assert tenant_host.get("/api/v1/ping").status_code == 200


def test_tenant_admin_is_not_reachable_for_a_tenant_owner_on_the_public_host(make_tenant, client_at):
    provisioned = make_tenant()
    public = client_at(settings.PLATFORM_DOMAIN)
    assert not public.login(username=provisioned.owner.email, password=OWNER_PASSWORD)
    assert public.get("/admin/tenants/tenant/").status_code == 302


def test_tenant_owner_gets_the_admin_on_their_own_host(make_tenant, client_at):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    client.post("/admin/login/", {"username": provisioned.owner.email, "password": OWNER_PASSWORD})
    page = client.get("/admin/accounts/user/")
    assert page.status_code == 200
    assert provisioned.owner.email in page.content.decode()
    # Platform tables (the tenant registry, dj-stripe's) are not in a tenant's admin.
    index = client.get("/admin/").content.decode()
    assert "/admin/tenants/" not in index and "/admin/djstripe/" not in index
    assert client.get("/admin/tenants/tenant/").status_code == 404
    assert client.get("/admin/djstripe/account/").status_code == 404


def test_platform_staff_cannot_delete_a_tenant_from_the_admin(staff_client, make_tenant):
    provisioned = make_tenant()
    response = staff_client.post(f"/admin/tenants/tenant/{provisioned.tenant.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Tenant.objects.filter(pk=provisioned.tenant.pk).exists()
