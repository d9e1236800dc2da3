"""Schema-level building blocks for tenants: cloning the template, the plain migrate path, and
keeping the template migrated. Services call these; nothing here knows about signup."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import schema_context, schema_exists

from tenants.errors import TenantError

CLONE_FUNCTION_SQL = Path(__file__).with_name("sql") / "tenant_schema_clone.sql"


def clone_function_install() -> None:
    """Install the tenant_schema_clone() SQL function (tenants/sql/) in the public schema.

    Done once at setup rather than on every signup: CREATE OR REPLACE FUNCTION from two
    concurrent signups fails one of them with 'tuple concurrently updated'."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME), connection.cursor() as cursor:
        cursor.execute(CLONE_FUNCTION_SQL.read_text())


def schema_clone_from_template(*, schema_name: str) -> bool:
    """Create `schema_name` as a copy of the pre-migrated template: the same catalog as migrations
    would have made (constraints and indexes under their own names, sequences, defaults, triggers
    and their functions, comments), and the rows migrations left there (django_migrations,
    content types, permissions), in one server-side call.

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
        cursor.execute(f"SELECT {settings.PUBLIC_SCHEMA_NAME}.tenant_schema_clone(%s, %s)", [template, schema_name])
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


@dataclass(frozen=True)
class CatalogRepair:
    """One change `schema_names_repair` made: `kind` is constraint, index or sequence; `old` and
    `new` are names (a sequence's type for a sequence)."""

    kind: str
    table: str
    old: str
    new: str


# The schema's constraints and indexes with the schema's name taken out of their definitions
# (which name it or not depending on the search_path), so that two schemas' compare as text.
_CONSTRAINTS_SQL = """
    SELECT c.relname, con.conname, con.contype, replace(pg_get_constraintdef(con.oid), %(prefix)s, '')
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
    WHERE con.connamespace = %(schema)s::regnamespace AND c.relkind = 'r'
"""
_INDEXES_SQL = """
    SELECT t.relname, c.relname,
           replace(replace(pg_get_indexdef(i.indexrelid), %(prefix)s, ''), 'INDEX ' || quote_ident(c.relname) || ' ON ',
                   'INDEX ON ')
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
    WHERE c.relnamespace = %(schema)s::regnamespace AND t.relkind = 'r'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                      AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
"""
_RELATION_NAMES_SQL = "SELECT relname FROM pg_class WHERE relnamespace = %(schema)s::regnamespace"
_IDENTITY_SEQUENCES_SQL = """
    SELECT t.relname, s.relname, format_type(seq.seqtypid, NULL)
    FROM pg_depend d JOIN pg_class s ON s.oid = d.objid JOIN pg_sequence seq ON seq.seqrelid = s.oid
    JOIN pg_class t ON t.oid = d.refobjid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
      AND s.relnamespace = %(schema)s::regnamespace
"""

_Keyed: TypeAlias = dict[tuple[str, ...], set[str]]


def _by_definition(cursor: CursorWrapper, sql: str, schema: str) -> _Keyed:
    cursor.execute(sql, {"schema": schema, "prefix": f"{connection.ops.quote_name(schema)}."})
    names: _Keyed = defaultdict(set)
    for row in cursor.fetchall():
        table, name, *definition = row
        names[(table, *definition)].add(name)
    return names


def _renames(tenant: _Keyed, template: _Keyed) -> list[tuple[str, str, str]]:
    """(table, old, new) where one object of the tenant and one of the template have the same
    definition but not the same name; ambiguous pairs are left alone."""
    renames = []
    for key, names in tenant.items():
        extra, missing = names - template.get(key, set()), template.get(key, set()) - names
        if len(extra) == 1 and len(missing) == 1:
            renames.append((key[0], extra.pop(), missing.pop()))
    return sorted(renames)


def schema_names_repair(*, schema_name: str) -> list[CatalogRepair]:
    """Give `schema_name` the template's names for its constraints and indexes, and the
    template's types for its identity sequences, where the definition is the template's and
    only the name (or type) differs. Schemas cloned by django-tenants' clone_schema() got
    PostgreSQL's default names for every unique constraint (`affiliates_affiliate_program_id_
    user_id_key` for `affiliate_one_per_program`) and bigint identity sequences; code that
    matches an IntegrityError by name, and migrations that alter a constraint by name, need the
    real ones. A no-op where everything matches (and for the template, or without one)."""
    template = settings.TENANT_BASE_SCHEMA
    if schema_name in (template, settings.PUBLIC_SCHEMA_NAME) or not schema_exists(template):
        return []
    quote = connection.ops.quote_name
    done: list[CatalogRepair] = []
    with connection.cursor() as cursor:
        constraints = _renames(
            _by_definition(cursor, _CONSTRAINTS_SQL, schema_name), _by_definition(cursor, _CONSTRAINTS_SQL, template)
        )
        indexes = _renames(
            _by_definition(cursor, _INDEXES_SQL, schema_name), _by_definition(cursor, _INDEXES_SQL, template)
        )
        cursor.execute(_RELATION_NAMES_SQL, {"schema": schema_name})
        taken = {row[0] for row in cursor.fetchall()}
        for table, old, new in constraints:
            # An index-backed constraint's index takes the new name too: it must be free.
            if new in taken:
                continue
            cursor.execute(
                f"ALTER TABLE {quote(schema_name)}.{quote(table)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}"
            )
            taken.discard(old)
            taken.add(new)
            done.append(CatalogRepair(kind="constraint", table=table, old=old, new=new))
        for table, old, new in indexes:
            if new in taken:
                continue
            cursor.execute(f"ALTER INDEX {quote(schema_name)}.{quote(old)} RENAME TO {quote(new)}")
            taken.discard(old)
            taken.add(new)
            done.append(CatalogRepair(kind="index", table=table, old=old, new=new))
        cursor.execute(_IDENTITY_SEQUENCES_SQL, {"schema": template})
        types = {(table, sequence): kind for table, sequence, kind in cursor.fetchall()}
        cursor.execute(_IDENTITY_SEQUENCES_SQL, {"schema": schema_name})
        for table, sequence, kind in cursor.fetchall():
            wanted = types.get((table, sequence))
            if wanted is not None and wanted != kind:
                cursor.execute(f"ALTER SEQUENCE {quote(schema_name)}.{quote(sequence)} AS {wanted}")
                done.append(CatalogRepair(kind="sequence", table=table, old=kind, new=wanted))
    return done
