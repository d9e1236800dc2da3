"""`core.sqlrows`, which the conversion hot path writes with: rows built from model instances
must be the rows the ORM would have written, and prepared statements must follow the tenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone

from affiliates.models import Commission, Conversion
from affiliates.tests import factories
from core import sqlrows

pytestmark = pytest.mark.django_db


def _conversion(program, external_id: str) -> Conversion:
    return Conversion(
        program=program,
        external_id=external_id,
        event_type="purchase",
        amount_minor=4990,
        currency="USD",
        product_ids=["plan-a", "plan-b"],
        metadata={"order": {"lines": 2}},
        hints={"code": "x"},
        attribution={"weights": {"1": "1.000000"}},
        flags=["self_click"],
        occurred_at=timezone.now(),
    )


def test_an_insert_writes_what_the_orm_writes_column_for_column(program):
    # given the same conversion saved by the ORM and written by sqlrows
    by_orm = _conversion(program, "orm")
    by_orm.save()
    by_sql = _conversion(program, "sql")
    by_sql.created_at, by_sql.occurred_at = by_orm.created_at, by_orm.occurred_at

    # when
    sql, params = sqlrows.insert([by_sql], returning="id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        new_id = cursor.fetchone()[0]

    # then every column but the id and the external id reads back the same
    orm_row = model_to_dict(Conversion.objects.get(pk=by_orm.pk))
    sql_row = model_to_dict(Conversion.objects.get(pk=new_id))
    assert sql_row.pop("external_id") == "sql" and orm_row.pop("external_id") == "orm"
    assert {k: v for k, v in sql_row.items() if k != "id"} == {k: v for k, v in orm_row.items() if k != "id"}
    assert sql_row["metadata"] == {"order": {"lines": 2}} and sql_row["product_ids"] == ["plan-a", "plan-b"]


def test_an_insert_takes_expressions_for_columns_and_writes_nulls_as_null(program):
    # given a saved conversion and a commission whose conversion is named by an SQL expression
    conversion = _conversion(program, "c1")
    conversion.save()
    aff = factories.affiliate(program)
    commission = Commission(
        program=program,
        affiliate=aff,
        rule=None,
        base_minor=4990,
        original_minor=499,
        amount_minor=499,
        currency="USD",
        approvable_at=timezone.now() + timedelta(days=30),
    )

    # when
    sql, params = sqlrows.insert(
        [commission], expressions={"conversion_id": ("(SELECT id FROM affiliates_conversion WHERE external_id = 'c1')")}
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)

    # then the row points at the conversion, nullable columns are NULL and defaults applied
    row = Commission.objects.get(conversion=conversion)
    assert (row.affiliate_id, row.amount_minor, row.status, row.kind) == (aff.id, 499, "pending", "commission")
    assert (row.link_id, row.rule_id, row.source_id, row.paid_at) == (None, None, None, None)
    assert "NULL" in sql and len(params) < 18  # the NULLs are in the text


def test_an_update_writes_only_the_named_fields(program):
    conversion = _conversion(program, "u1")
    conversion.save()
    conversion.refunded_minor, conversion.review = 100, "flagged"

    sql, params = sqlrows.update(conversion, ["refunded_minor"])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)

    row = Conversion.objects.get(pk=conversion.pk)
    assert (row.refunded_minor, row.review) == (100, "none")


def test_a_prepared_statement_follows_the_tenant_of_the_connection(reused_tenant):
    # given two tenants, each with a program of its own name
    first, second = reused_tenant(), reused_tenant()
    for provisioned, name in ((first, "First"), (second, "Second")):
        connection.set_tenant(provisioned.tenant)
        factories.program(name=name, slug=name.lower())

    # when one prepared statement runs on the same connection under each tenant in turn
    seen = []
    for provisioned in (first, second, first):
        connection.set_tenant(provisioned.tenant)
        with sqlrows.prepared() as cursor:
            cursor.execute("SELECT name FROM affiliates_program WHERE slug <> %s", ["-"], prepare=True)
            seen.append(cursor.fetchone()[0])
    connection.set_schema_to_public()

    # then each run read its own tenant's table (PostgreSQL re-plans on a new search_path), from
    # one statement the server really holds prepared
    assert seen == ["First", "Second", "First"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%affiliates_program%"])
        assert cursor.fetchone()[0] == 1


def test_nested_prepared_cursors_share_the_outermost(tenant):
    with sqlrows.prepared() as outer, sqlrows.prepared() as inner:
        assert inner is outer
        assert sqlrows.prepared_current() is outer
    assert outer.closed  # closed
    assert sqlrows.prepared_current() is None  # and forgotten
