"""Tenants cloned from the template by django-tenants' clone_schema() have PostgreSQL's default
names for their unique constraints (and bigint identity sequences where migrations made
integer ones); this gives every tenant schema the template's names back. It runs in every
schema `migrate_schemas` migrates and changes nothing where the names are already right.

A later migration that alters or drops a constraint by name should depend on this one."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from tenants import provisioning


class RepairClonedSchemaNames(Operation):
    """Not a RunPython: the router lets this shared-only app run nothing in tenant schemas, and
    only RunPython and RunSQL ask it; a plain operation runs wherever the migration is applied."""

    reduces_to_sql = False
    reversible = True

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        provisioning.schema_names_repair(schema_name=schema_editor.connection.schema_name)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        # The old names were never wanted; going back keeps the right ones.
        pass

    def describe(self) -> str:
        return "Give cloned tenant schemas the template's constraint and index names"


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [RepairClonedSchemaNames()]
