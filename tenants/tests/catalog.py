"""What the PostgreSQL catalog holds about one schema, as comparable sets of rows: two schemas are
the same when every kind below is equal once the schema's own name is taken out.

Definitions are read with search_path set to pg_catalog only, so that every object of the schema
comes out qualified with its name, which `_normalised` then replaces by `@`."""

from __future__ import annotations

import re

from django.db import connection
from django.db.backends.utils import CursorWrapper

# One query per kind; %(schema)s is the schema's name. Column order is compared by position among
# the live columns (attnum keeps gaps where a migration dropped a column). Privileges are compared
# as they take effect: an ACL spelling out the owner's defaults equals none.
QUERIES: dict[str, str] = {
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text, c.relrowsecurity,
               c.relforcerowsecurity, c.relreplident, pg_get_userbyid(c.relowner),
               coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char",
                                             c.relowner))::text
        FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind <> 'i'
    """,
    "columns": """
        SELECT c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated,
               a.attcollation::regcollation::text, a.attstorage, a.attcompression, a.attstattarget,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'v') AND a.attnum > 0
          AND NOT a.attisdropped
    """,
    "constraints": """
        SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid), con.condeferrable,
               con.condeferred, con.convalidated, con.connoinherit, ic.relname
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        LEFT JOIN pg_class ic ON ic.oid = con.conindid
        WHERE con.connamespace = %(schema)s::regnamespace
    """,
    "indexes": """
        SELECT t.relname, c.relname, pg_get_indexdef(i.indexrelid), i.indisclustered, i.indisreplident,
               i.indisvalid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
        WHERE c.relnamespace = %(schema)s::regnamespace
    """,
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin,
               s.seqcache, s.seqcycle, owner.relname, a.attname, d.deptype
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
             AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
        LEFT JOIN pg_class owner ON owner.oid = d.refobjid
        LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE c.relnamespace = %(schema)s::regnamespace
    """,
    "defaults": """
        SELECT table_name, column_name, column_default, is_identity, identity_generation, identity_start,
               identity_increment, is_generated, generation_expression
        FROM information_schema.columns WHERE table_schema = %(schema)s
    """,
    "triggers": """
        SELECT c.relname, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled
        FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND NOT tg.tgisinternal
    """,
    "functions": """
        SELECT p.proname, p.prokind, pg_get_function_identity_arguments(p.oid),
               CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END,
               coalesce(p.proacl, acldefault('f'::"char", p.proowner))::text
        FROM pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace
    """,
    "views": """
        SELECT c.relname, c.relkind, pg_get_viewdef(c.oid)
        FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('v', 'm')
    """,
    "types": """
        SELECT t.typname, t.typtype, t.typcategory FROM pg_type t
        WHERE t.typnamespace = %(schema)s::regnamespace
    """,
    "policies": """
        SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check
        FROM pg_policies WHERE schemaname = %(schema)s
    """,
    "comments": """
        SELECT (pg_identify_object(d.classoid, d.objoid, d.objsubid)).type,
               (pg_identify_object(d.classoid, d.objoid, d.objsubid)).identity, d.description
        FROM pg_description d
        WHERE (pg_identify_object(d.classoid, d.objoid, d.objsubid)).schema = %(schema)s
    """,
}

# pg_sequence_last_value() is NULL until the sequence is first used.
SEQUENCE_VALUES = """
    SELECT c.relname, pg_sequence_last_value(c.oid)
    FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'S'
"""


def _normalised(value: object, schema: str) -> object:
    if not isinstance(value, str):
        return value
    # Qualified names: schema."x", schema.x and "schema"."x"; the schema never appears otherwise.
    quoted = connection.ops.quote_name(schema)
    value = value.replace(f"{quoted}.", "@.")
    return re.sub(rf"(?<![\w$\"]){re.escape(schema)}\.", "@.", value)


def _rows(cursor: CursorWrapper, sql: str, schema: str) -> set[tuple[object, ...]]:
    cursor.execute(sql, {"schema": schema})
    return {tuple(_normalised(value, schema) for value in row) for row in cursor.fetchall()}


def schema_catalog(schema: str) -> dict[str, set[tuple[object, ...]]]:
    """Every kind in QUERIES for `schema`, its own name replaced by `@`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('search_path')")
        search_path = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('search_path', 'pg_catalog', false)")
        try:
            return {kind: _rows(cursor, sql, schema) for kind, sql in QUERIES.items()}
        finally:
            cursor.execute("SELECT set_config('search_path', %s, false)", [search_path])


def sequence_values(schema: str) -> set[tuple[str, int | None]]:
    """Where each sequence of `schema` stands: (name, the last value handed out or None)."""
    with connection.cursor() as cursor:
        cursor.execute(SEQUENCE_VALUES, {"schema": schema})
        return {(name, value) for name, value in cursor.fetchall()}


def catalog_differences(
    left: dict[str, set[tuple[object, ...]]], right: dict[str, set[tuple[object, ...]]]
) -> dict[str, dict[str, list[tuple[object, ...]]]]:
    """Per kind, the rows only one side has (empty when the schemas are the same)."""
    differences = {}
    for kind in QUERIES:
        only_left, only_right = left[kind] - right[kind], right[kind] - left[kind]
        if only_left or only_right:
            differences[kind] = {"only_left": sorted(only_left, key=repr), "only_right": sorted(only_right, key=repr)}
    return differences
