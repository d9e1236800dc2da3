"""Celery beat's scheduler: each entry goes to every active business tenant, and a database that
goes away costs a tick, not beat itself.

Beat lives for weeks on one database connection and nothing closed it between ticks the way
Django does around a request: after a PostgreSQL restart the first tick that read the tenants
failed with "the connection is lost", the exception left the scheduler's loop and beat exited,
so clicks stopped draining until someone restarted it (issue 14, item 1; tests/test_healing.py)."""

from __future__ import annotations

import contextlib
import logging

from celery.beat import ScheduleEntry
from django.db import DatabaseError, close_old_connections, connection, models
from kombu.messaging import Producer
from tenant_schemas_celery.scheduler import TenantAwarePersistentScheduler

from tenants.models import Tenant

logger = logging.getLogger(__name__)


class ActiveTenantScheduler(TenantAwarePersistentScheduler):
    """Beat entries go to active business tenants only: not the template, not suspended ones."""

    @classmethod
    def get_queryset(cls) -> models.QuerySet[Tenant]:
        return Tenant.objects.filter(kind=Tenant.Kind.BUSINESS, status=Tenant.Status.ACTIVE)

    def apply_entry(self, entry: ScheduleEntry, producer: Producer | None = None) -> None:
        """Send `entry` to each active tenant (the library reads them, then sends). Without the
        database this tick of the entry is skipped and logged, and beat goes on: the entry's next
        tick (a second later for the click drain) tries again. Every entry is a sweep that picks
        up whatever a skipped tick left (buffered clicks, due commissions, queued runs)."""
        # As before a request: drop a connection that failed or outlived CONN_MAX_AGE, and have
        # the next query check the one kept (CONN_HEALTH_CHECKS), so that a database restarted
        # since the last tick costs a reconnection rather than an error.
        close_old_connections()
        try:
            super().apply_entry(entry, producer=producer)
        except DatabaseError as exc:
            logger.warning(
                "beat: could not list the active tenants (%s); %s skipped, tried again at its next tick",
                str(exc).strip(),
                entry.name,
            )
            # Whatever it was left in, the next tick starts from a new connection.
            with contextlib.suppress(DatabaseError):
                connection.close()
