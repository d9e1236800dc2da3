"""Writes for tenants: signup provisioning, suspension, and the platform's own rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists, tenant_context

from accounts.models import User
from accounts.services import login_token_issue
from tenants import provisioning, selectors
from tenants.errors import TenantError
from tenants.models import Domain, Tenant
from tenants.tasks import welcome_email_send
from tenants.validators import subdomain_clean


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    owner: User
    url: str
    login_url: str


def schema_name_for(slug: str) -> str:
    # A prefix keeps tenant schemas apart from `public`, `pg_*` and the template; long slugs
    # are shortened with a hash so the name stays within PostgreSQL's 63-byte identifiers.
    base = slug.replace("-", "_")
    if len(base) <= 61:
        return f"t_{base}"
    return f"t_{base[:50]}_{hashlib.sha256(slug.encode()).hexdigest()[:10]}"


def _validate_owner(*, email: str, password: str, name: str) -> str:
    if not isinstance(email, str) or not email.strip():
        raise TenantError("email_required", "Enter the owner's email address.", field="owner_email")
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise TenantError("email_invalid", "Enter a valid email address.", field="owner_email") from exc
    if not isinstance(password, str) or not password:
        raise TenantError("password_required", "Choose a password.", field="password")
    try:
        validate_password(password, user=User(email=email, name=name))
    except ValidationError as exc:
        raise TenantError("password_too_weak", " ".join(exc.messages), field="password") from exc
    return email


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TenantError("name_required", "Enter the name of your business.", field="name")
    name = name.strip()
    if len(name) > 200:
        raise TenantError("name_too_long", "The business name must be at most 200 characters.", field="name")
    return name


def tenant_provision(
    *,
    name: str,
    subdomain: str,
    owner_email: str,
    owner_password: str,
    by_migrations: bool = False,
) -> ProvisionedTenant:
    """Create a business tenant: its row, domain, schema (cloned from the template), owner
    account and a login handover token, all in one transaction. Any failure leaves none of
    them; a concurrent signup for the same subdomain gets `subdomain_taken`.

    `by_migrations` builds the schema by replaying every migration instead of cloning; it
    exists so that the benchmark can compare the two paths."""
    name = _validate_name(name)
    slug = subdomain_clean(subdomain)
    email = _validate_owner(email=owner_email, password=owner_password, name=name)
    host = f"{slug}.{settings.PLATFORM_DOMAIN}"
    taken = TenantError("subdomain_taken", f"“{slug}” is already taken.", field="subdomain", status=409)

    with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
        tenant = Tenant(name=name, slug=slug, schema_name=schema_name_for(slug), kind=Tenant.Kind.BUSINESS)
        tenant._provision_by_migrations = by_migrations
        try:
            # A taken subdomain fails django-tenants' own schema-name check (ValidationError);
            # in a race both pass it, and the unique index decides: the loser blocks here until
            # the winner commits, then fails (IntegrityError).
            with transaction.atomic():
                tenant.save(verbosity=0)
        except (IntegrityError, ValidationError) as exc:
            raise taken from exc
        Domain.objects.create(domain=host, tenant=tenant, is_primary=True)

        with tenant_context(tenant):
            owner = User.objects.create_user(
                email=email,
                password=owner_password,
                role=User.Role.OWNER,
                is_staff=True,
                is_superuser=True,
            )
            token = login_token_issue(user=owner)

        schema = tenant.schema_name
        owner_id = owner.pk
        transaction.on_commit(lambda: welcome_email_send.apply_async(args=[owner_id], headers={"_schema_name": schema}))
        # The host may have been looked up (and cached as unknown) before it existed.
        transaction.on_commit(lambda: selectors.tenant_routes_forget(hosts=[host]))

    return ProvisionedTenant(
        tenant=tenant,
        owner=owner,
        url=selectors.tenant_url(tenant=tenant),
        login_url=selectors.tenant_url(tenant=tenant, path=f"/auth/handover?token={token}"),
    )


def _status_set(*, tenant: Tenant, status: str, reason: str = "") -> Tenant:
    if tenant.kind != Tenant.Kind.BUSINESS:
        raise TenantError("not_a_business", "Only business tenants can be suspended or reactivated.")
    with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.status = status
        locked.suspended_at = timezone.now() if status == Tenant.Status.SUSPENDED else None
        locked.suspension_reason = reason if status == Tenant.Status.SUSPENDED else ""
        locked.save(update_fields=["status", "suspended_at", "suspension_reason"])
        hosts = selectors.tenant_hosts(tenant=locked)
        transaction.on_commit(lambda: selectors.tenant_routes_forget(hosts=hosts))
    return locked


def tenant_suspend(*, tenant: Tenant, reason: str = "") -> Tenant:
    return _status_set(tenant=tenant, status=Tenant.Status.SUSPENDED, reason=reason)


def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    return _status_set(tenant=tenant, status=Tenant.Status.ACTIVE)


def platform_tenants_ensure() -> tuple[Tenant, Tenant]:
    """Make sure the public tenant (serving the bare PLATFORM_DOMAIN) and the template tenant
    exist. Cheap when they do; creating the template replays every tenant migration once."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        public, _ = Tenant.objects.get_or_create(
            schema_name=settings.PUBLIC_SCHEMA_NAME,
            defaults={"name": "Platform", "slug": "public", "kind": Tenant.Kind.PUBLIC},
        )
        domain, created = Domain.objects.get_or_create(
            domain=settings.PLATFORM_DOMAIN, defaults={"tenant": public, "is_primary": True}
        )
        if not created and domain.tenant_id != public.pk:
            raise TenantError("platform_domain_in_use", f"{settings.PLATFORM_DOMAIN} belongs to another tenant.")
        template = Tenant.objects.filter(schema_name=settings.TENANT_BASE_SCHEMA).first()
        if template is None:
            template = Tenant(
                schema_name=settings.TENANT_BASE_SCHEMA,
                name="Tenant template",
                slug="tenant-template",
                kind=Tenant.Kind.TEMPLATE,
            )
            # save() creates and migrates the schema only when it does not exist yet.
            template.save(verbosity=0)
        elif not schema_exists(template.schema_name):
            template.create_schema(check_if_exists=True, verbosity=0)
    return public, template


def platform_migrate(*, verbosity: int = 1) -> list[str]:
    """Bring the template and every tenant schema up to date; return the schemas migrated.

    Schemas with nothing to apply are skipped: `migrate` itself renders every app's model
    state before it looks, which costs tens of seconds per schema with dj-stripe installed."""
    provisioning.clone_function_install()
    platform_tenants_ensure()
    migrated = []
    # The template first: signups during a long migration then already clone the new shape.
    businesses = Tenant.objects.filter(kind=Tenant.Kind.BUSINESS).order_by("created_at")
    schemas = [settings.TENANT_BASE_SCHEMA, *businesses.values_list("schema_name", flat=True)]
    for schema in schemas:
        if provisioning.schema_pending_migrations(schema_name=schema):
            provisioning.schema_migrate(schema_name=schema, verbosity=verbosity)
            migrated.append(schema)
    return migrated
