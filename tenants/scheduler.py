from django.db import models
from tenant_schemas_celery.scheduler import TenantAwarePersistentScheduler

from tenants.models import Tenant


class ActiveTenantScheduler(TenantAwarePersistentScheduler):
    """Beat entries go to active business tenants only: not the template, not suspended ones."""

    @classmethod
    def get_queryset(cls) -> models.QuerySet:
        return Tenant.objects.filter(kind=Tenant.Kind.BUSINESS, status=Tenant.Status.ACTIVE)
