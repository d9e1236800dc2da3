"""The Celery app. tenant-schemas-celery carries the schema of the enqueuing code in each
task's headers and switches the worker's connection to it before the task runs."""

import os

from celery import Task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections
from tenant_schemas_celery.app import CeleryApp, switch_schema

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("affiliate_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def connections_refresh(sender: Task | None = None, **kwargs: object) -> None:
    """Around every task, what Django does around every request: close a connection that failed
    or outlived CONN_MAX_AGE, and have the next query check the one kept (CONN_HEALTH_CHECKS).

    Celery's Django fixup alone closes connections once every CELERY_DB_REUSE_MAX tasks
    whatever their state: after a PostgreSQL restart every task failed on the dead connection
    until then (69 click drains in 70 s; issue 14, item 2). Tasks run in-process (`apply()`,
    eager) are the caller's business: its connection may be inside a transaction."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


# Receivers run in the order they were connected, and the tenant switch reads the tenant on the
# connection: it must come after the refresh, or it meets the dead connection first.
task_prerun.disconnect(switch_schema, dispatch_uid="tenant_schemas_switch_schema")
task_prerun.connect(connections_refresh, dispatch_uid="config_connections_refresh_prerun")
task_prerun.connect(switch_schema, dispatch_uid="tenant_schemas_switch_schema")
task_postrun.connect(connections_refresh, dispatch_uid="config_connections_refresh_postrun")
