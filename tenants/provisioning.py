"""Schema-level building blocks for tenants: cloning the template, the plain migrate path, and
keeping the template migrated. Services call these; nothing here knows about signup."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import schema_context, schema_exists

from tenants.errors import TenantError


def clone_function_install() -> None:
    """Install django-tenants' clone_schema() SQL function in the public schema.

    Done once at setup rather than on every signup: CREATE OR REPLACE FUNCTION from two
    concurrent signups fails one of them with 'tuple concurrently updated'."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME), connection.cursor() as cursor:
        db_user = settings.DATABASES["default"].get("USER") or "postgres"
        cursor.execute(CLONE_SCHEMA_FUNCTION.format(db_user=db_user))


def schema_clone_from_template(*, schema_name: str) -> bool:
    """Create `schema_name` as a copy of the pre-migrated template (tables, sequences, and the
    rows migrations left there: django_migrations, content types, permissions).

    The template exists only once `platform_setup` has run, and that installs the clone
    function first, so the function is not looked up (nor reinstalled, racily) per signup."""
    template = settings.TENANT_BASE_SCHEMA
    if not schema_exists(template):
        raise TenantError(
            "platform_not_ready", "The tenant template is missing; run `manage.py platform_setup`.", status=503
        )
    if schema_exists(schema_name, case_sensitive=False):
        raise TenantError("subdomain_taken", "That subdomain is already taken.", field="subdomain", status=409)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {settings.PUBLIC_SCHEMA_NAME}.clone_schema(%s, %s, 'DATA')", [template, schema_name])
    return True


def schema_create_by_migrations(*, schema_name: str, verbosity: int = 0) -> None:
    """The plain path: an empty schema, then every tenant migration replayed into it."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {connection.ops.quote_name(schema_name)}")
    schema_migrate(schema_name=schema_name, verbosity=verbosity)


def schema_pending_migrations(*, schema_name: str) -> int:
    """How many migrations are unapplied in `schema_name`. Cheap: it reads the graph and the
    schema's django_migrations, but does not render model state as `migrate` always does."""
    with schema_context(schema_name):
        executor = MigrationExecutor(connection)
        return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def schema_migrate(*, schema_name: str, verbosity: int = 0) -> None:
    call_command("migrate_schemas", tenant=True, schema_name=schema_name, interactive=False, verbosity=verbosity)
