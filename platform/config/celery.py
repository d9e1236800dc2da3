"""The Celery app. tenant-schemas-celery carries the schema of the enqueuing code in each
task's headers and switches the worker's connection to it before the task runs."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("affiliate_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
