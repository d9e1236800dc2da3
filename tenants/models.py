from __future__ import annotations

from django.db import connection, models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import schema_exists

from tenants import provisioning


class Tenant(TenantMixin):
    """A business on the platform: one PostgreSQL schema, reached on <slug>.<PLATFORM_DOMAIN>.

    Two rows are not businesses: the `public` schema (the platform itself) and the
    `tenant_template` schema that new tenants are cloned from (it has no domain)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    class Kind(models.TextChoices):
        BUSINESS = "business", "Business"
        PUBLIC = "public", "Public (platform)"
        TEMPLATE = "template", "Template schema"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BUSINESS)
    created_at = models.DateTimeField(default=timezone.now)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=500, blank=True)
    welcome_email_sent_at = models.DateTimeField(null=True, blank=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    def create_schema(self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1) -> bool:
        # Business tenants are cloned from the template; only the template itself (and tenants
        # built by migrations, for the benchmark's comparison) replay every migration.
        if check_if_exists and schema_exists(self.schema_name):
            return False
        if self.kind == self.Kind.BUSINESS and not getattr(self, "_provision_by_migrations", False):
            provisioning.schema_clone_from_template(schema_name=self.schema_name)
        else:
            provisioning.schema_create_by_migrations(schema_name=self.schema_name, verbosity=verbosity)
        connection.set_schema_to_public()
        return True


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
