import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from accounts.models import User
from tenants import services
from tenants.errors import TenantError
from tenants.models import Domain, Tenant
from tests.support.race import race
from tests.support.tenants import OWNER_PASSWORD, unique_slug


def _schema_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 't\\_%%'")
        return cursor.fetchone()[0]


def _tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_provisioning_creates_schema_tables_domain_and_owner(make_tenant):
    provisioned = make_tenant(name="Acme Inc", email="Boss@Acme.Test")
    tenant = provisioned.tenant

    assert tenant.schema_name == services.schema_name_for(tenant.slug)
    assert schema_exists(tenant.schema_name)
    tables = _tables_in(tenant.schema_name)
    assert {"accounts_user", "accounts_logintoken", "django_session", "django_migrations"} <= tables
    # Shared-only tables stay in the public schema.
    assert "tenants_tenant" not in tables
    assert not any(t.startswith("djstripe_") for t in tables)
    assert Domain.objects.get(tenant=tenant).domain == f"{tenant.slug}.{settings.PLATFORM_DOMAIN}"
    assert provisioned.url == f"http://{tenant.slug}.localhost:8000/"
    assert provisioned.login_url.startswith(f"http://{tenant.slug}.localhost:8000/auth/handover?token=")

    with schema_context(tenant.schema_name):
        owner = User.objects.get()
        assert owner.email == "boss@acme.test"
        assert owner.role == User.Role.OWNER
        assert owner.is_staff and owner.is_superuser
        assert owner.check_password(OWNER_PASSWORD)
        # The clone carries the migration history, so the schema counts as fully migrated.
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'accounts'")
            assert cursor.fetchone()[0] == 1
    assert not User.objects.filter(email="boss@acme.test").exists()  # not in public


def test_template_and_public_tenants_are_not_businesses(platform_ready):
    assert Tenant.objects.get(schema_name="public").kind == Tenant.Kind.PUBLIC
    template = Tenant.objects.get(schema_name=settings.TENANT_BASE_SCHEMA)
    assert template.kind == Tenant.Kind.TEMPLATE
    assert not Domain.objects.filter(tenant=template).exists()


@pytest.mark.parametrize(
    ("subdomain", "code"),
    [
        ("www", "subdomain_reserved"),
        ("Bad_Name!", "subdomain_invalid_characters"),
        ("a" * 64, "subdomain_too_long"),
        ("ab", "subdomain_too_short"),
        ("-edge", "subdomain_hyphen_at_edge"),
    ],
)
def test_refused_subdomains_create_nothing(platform_ready, subdomain, code):
    tenants_before, domains_before, schemas_before = Tenant.objects.count(), Domain.objects.count(), _schema_count()
    with pytest.raises(TenantError) as excinfo:
        services.tenant_provision(name="X", subdomain=subdomain, owner_email="o@x.test", owner_password=OWNER_PASSWORD)
    assert excinfo.value.code == code
    assert (Tenant.objects.count(), Domain.objects.count(), _schema_count()) == (
        tenants_before,
        domains_before,
        schemas_before,
    )


def test_duplicate_subdomain_is_taken_and_creates_nothing(make_tenant):
    first = make_tenant()
    counts = (Tenant.objects.count(), Domain.objects.count(), _schema_count())
    with pytest.raises(TenantError) as excinfo:
        make_tenant(slug=first.tenant.slug.upper())
    assert excinfo.value.code == "subdomain_taken"
    assert excinfo.value.status == 409
    assert (Tenant.objects.count(), Domain.objects.count(), _schema_count()) == counts


@pytest.mark.parametrize(
    ("field", "kwargs", "code"),
    [
        ("owner_email", {"owner_email": "not-an-email"}, "email_invalid"),
        ("password", {"owner_password": "short"}, "password_too_weak"),
        ("password", {"owner_password": "12345678901"}, "password_too_weak"),
        ("name", {"name": "  "}, "name_required"),
    ],
)
def test_bad_owner_or_name_creates_nothing(platform_ready, field, kwargs, code):
    args = {"name": "Acme", "subdomain": unique_slug(), "owner_email": "o@x.test", "owner_password": OWNER_PASSWORD}
    args.update(kwargs)
    before = Tenant.objects.count()
    with pytest.raises(TenantError) as excinfo:
        services.tenant_provision(**args)
    assert (excinfo.value.code, excinfo.value.field) == (code, field)
    assert Tenant.objects.count() == before
    assert not schema_exists(services.schema_name_for(args["subdomain"]))


def test_long_subdomains_get_distinct_valid_schema_names():
    a, b = "a" * 62 + "b", "a" * 62 + "c"
    assert services.schema_name_for(a) != services.schema_name_for(b)
    assert all(len(services.schema_name_for(s)) <= 63 for s in (a, b))


@pytest.mark.django_db(transaction=True)
def test_failure_mid_provisioning_leaves_nothing_behind(platform_ready, monkeypatch):
    slug = unique_slug("boom")

    def explode(**kwargs):
        raise RuntimeError("token service down")

    # Fails after the schema was cloned, the domain written and the owner created.
    monkeypatch.setattr(services, "login_token_issue", explode)
    with pytest.raises(RuntimeError):
        services.tenant_provision(name="Boom", subdomain=slug, owner_email="o@boom.test", owner_password=OWNER_PASSWORD)

    assert not Tenant.objects.filter(slug=slug).exists()
    assert not Domain.objects.filter(domain__startswith=f"{slug}.").exists()
    assert not schema_exists(services.schema_name_for(slug))


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_for_one_subdomain_create_exactly_one_tenant(platform_ready):
    slug = unique_slug("race")
    workers = 4

    def signup(i: int) -> str:
        try:
            services.tenant_provision(
                name=f"Racer {i}", subdomain=slug, owner_email=f"o{i}@race.test", owner_password=OWNER_PASSWORD
            )
        except TenantError as exc:
            return exc.code
        return "created"

    raced = race(signup, times=workers)

    assert raced.errors == []  # any other error is a 500 in the making
    assert sorted(raced.values) == ["created"] + ["subdomain_taken"] * (workers - 1)
    assert Tenant.objects.filter(slug=slug).count() == 1
    assert Domain.objects.filter(domain=f"{slug}.{settings.PLATFORM_DOMAIN}").count() == 1
    assert schema_exists(services.schema_name_for(slug))


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_for_different_subdomains_all_succeed(platform_ready):
    slugs = [unique_slug("par") for _ in range(3)]

    def signup(index: int) -> str:
        slug = slugs[index]
        services.tenant_provision(
            name=slug, subdomain=slug, owner_email=f"o@{slug}.test", owner_password=OWNER_PASSWORD
        )
        return "created"

    raced = race(signup, times=len(slugs))

    assert raced.outcomes == ["created"] * 3
    assert Tenant.objects.filter(slug__in=slugs).count() == 3
