"""Hot-path SQL: INSERT and UPDATE statements built from model instances, so that a hot path
can join several writes into one statement (as CTEs) instead of a round trip each, and a cursor
that runs such statements as prepared statements.

Values go through each field's own `pre_save` and `get_db_prep_save`, as the ORM's save does,
and every concrete column is written, so a column added to a model later is covered without
touching the caller. A column can instead take an SQL expression (another CTE's id, say).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import psycopg
from django.db import connection
from django.db.models import Model

# The outermost `prepared` cursor of this thread (or asyncio task), as Django's connection is
# per thread: nested uses find it here. Checked against the connection it was opened on.
_prepared: ContextVar[psycopg.Cursor | None] = ContextVar("sqlrows_prepared", default=None)

# attname -> SQL (no parameters), or a function of the instance giving (SQL, parameters)
Expressions = dict[str, str | Callable[[Any], tuple[str, list[Any]]]]


def insert(objs: Sequence[Model], *, expressions: Expressions | None = None, returning: str = "") -> tuple[str, list]:
    """(sql, params) inserting `objs` (instances of one model) as one multi-row INSERT."""
    meta = objs[0]._meta
    expressions = expressions or {}
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    rows: list[str] = []
    params: list[Any] = []
    for obj in objs:
        cells = []
        for field in fields:
            expression = expressions.get(field.attname)
            if expression is None:
                value = field.get_db_prep_save(field.pre_save(obj, True), connection)
                # NULL in the text, not a parameter: psycopg caches the parsing of statements
                # of at most 50 parameters, and most nullable columns are NULL on insert.
                if value is None:
                    cells.append("NULL")
                else:
                    cells.append("%s")
                    params.append(value)
            elif callable(expression):
                sql, values = expression(obj)
                cells.append(sql)
                params.extend(values)
            else:
                cells.append(expression)
        rows.append(f"({', '.join(cells)})")
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join(rows)}"
    )
    return (f"{sql} RETURNING {returning}" if returning else sql), params


def update(obj: Model, attnames: Sequence[str]) -> tuple[str, list]:
    """(sql, params) writing the named fields of a saved instance."""
    meta = obj._meta
    quote = connection.ops.quote_name
    assignments, params = [], []
    for attname in attnames:
        field = meta.get_field(attname)  # by name or attname (affiliate_id)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
    params.append(obj.pk)
    return f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {quote(meta.pk.column)} = %s", params  # noqa: S608


@contextlib.contextmanager
def prepared() -> Iterator[psycopg.Cursor]:
    """A cursor binding parameters on the server, for statements run with `prepare=True`:
    PostgreSQL then plans each statement once per connection and tenant instead of on every
    call (it re-plans when the search_path changes; psycopg drops its prepared statements after
    a rollback), and planning a statement of several CTEs costs more than running it. Parameters that can be
    NULL need a cast in the SQL (`%(x)s::bigint`), since the server must know their type.

    Opened through Django's cursor, so the tenant's search_path is set first (PostgreSQL
    re-plans a prepared statement by itself when the search_path differs), and errors come out
    as Django's (IntegrityError...). Nested uses share the outermost cursor: a hot path opens
    one for all its statements. Not for a pooler in transaction mode (PgBouncer), which does
    not keep prepared statements on one server connection."""
    outer = _prepared.get()
    if outer is not None and outer.connection is connection.connection and not outer.closed:
        with connection.wrap_database_errors:
            yield outer
        return
    with (
        connection.cursor() as wrapper,
        connection.wrap_database_errors,
        psycopg.Cursor(wrapper.cursor.connection) as cursor,
    ):
        token = _prepared.set(cursor)
        try:
            yield cursor
        finally:
            _prepared.reset(token)


def prepared_current() -> psycopg.Cursor | None:
    """The cursor `prepared` has open in this thread (or task), if any."""
    return _prepared.get()
