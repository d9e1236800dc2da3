"""A tenant cloned from the template has the catalog of a tenant built by migrations (issue 14,
item 7), and the migration that repairs tenants cloned by django-tenants' clone_schema() gives
them that catalog too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import schema_context

from tenants import provisioning
from tenants.tests.catalog import catalog_differences, schema_catalog, sequence_values

REPAIR_MIGRATION = ("tenants", "0002_cloned_schema_names")


def _without_djstripe_migrations() -> override_settings:
    # dj-stripe is a shared app: its migrations make nothing in a tenant schema, but replaying
    # its history costs over a minute (see conftest); the catalog is the same without it.
    return override_settings(MIGRATION_MODULES={**settings.MIGRATION_MODULES, "djstripe": None})


def _schema_drop(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema)} CASCADE")


def _constraint_names(schema: str, table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s)",
            [f"{connection.ops.quote_name(schema)}.{table}"],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture(scope="module")
def migrated_schema(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A tenant schema built by replaying every migration, committed, dropped afterwards."""
    schema = f"t_migrated_{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        with _without_djstripe_migrations():
            provisioning.schema_create_by_migrations(schema_name=schema)
        try:
            yield schema
        finally:
            _schema_drop(schema)


@pytest.mark.django_db
def test_a_cloned_schema_has_the_catalog_of_a_migrated_one(platform_ready, migrated_schema):
    clone = f"t_clone_{uuid.uuid4().hex[:8]}"

    provisioning.schema_clone_from_template(schema_name=clone)

    assert catalog_differences(schema_catalog(clone), schema_catalog(migrated_schema)) == {}


@pytest.mark.django_db
def test_a_cloned_schema_keeps_the_named_constraints(platform_ready):
    clone = f"t_clone_{uuid.uuid4().hex[:8]}"

    provisioning.schema_clone_from_template(schema_name=clone)

    assert "affiliate_one_per_program" in _constraint_names(clone, "affiliates_affiliate")
    assert {"conversion_external_id", "conversion_idempotency_key"} <= _constraint_names(clone, "affiliates_conversion")
    assert "credit_once" in _constraint_names(clone, "affiliates_conversioncredit")
    assert "payout_item_once_per_run" in _constraint_names(clone, "billing_payoutitem")
    assert "dailystat_one_row" in _constraint_names(clone, "affiliates_dailystat")
    assert "django_content_type_app_label_model_76bd3d3b_uniq" in _constraint_names(clone, "django_content_type")


@pytest.mark.django_db
def test_a_cloned_schema_has_the_templates_rows_and_sequence_positions(platform_ready):
    clone = f"t_clone_{uuid.uuid4().hex[:8]}"

    provisioning.schema_clone_from_template(schema_name=clone)

    assert sequence_values(clone) == sequence_values(settings.TENANT_BASE_SCHEMA)
    with schema_context(clone):
        applied = MigrationRecorder(connection).applied_migrations()
    with schema_context(settings.TENANT_BASE_SCHEMA):
        assert applied.keys() == MigrationRecorder(connection).applied_migrations().keys()


@pytest.mark.django_db
def test_a_cloned_ledger_is_append_only_through_its_own_function(platform_ready):
    clone = f"t_clone_{uuid.uuid4().hex[:8]}"

    provisioning.schema_clone_from_template(schema_name=clone)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.pronamespace::regnamespace::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE t.tgrelid = to_regclass(%s) AND NOT t.tgisinternal",
            [f"{clone}.billing_ledgerentry"],
        )
        assert cursor.fetchall() == [(clone,)]


@pytest.mark.django_db
def test_repair_changes_nothing_in_a_schema_with_the_right_names(platform_ready):
    clone = f"t_clone_{uuid.uuid4().hex[:8]}"
    provisioning.schema_clone_from_template(schema_name=clone)
    before = schema_catalog(clone)

    repairs = provisioning.schema_names_repair(schema_name=clone)

    assert repairs == []
    assert schema_catalog(clone) == before


@pytest.mark.django_db
def test_repair_leaves_the_template_and_public_alone(platform_ready):
    assert provisioning.schema_names_repair(schema_name=settings.TENANT_BASE_SCHEMA) == []
    assert provisioning.schema_names_repair(schema_name=settings.PUBLIC_SCHEMA_NAME) == []


@pytest.mark.django_db(transaction=True)
def test_migrate_schemas_repairs_a_tenant_cloned_by_django_tenants(platform_ready, migrated_schema):
    # Given a tenant cloned the old way (django-tenants' function, installed for this test), whose
    # history, copied from the template, lacks the repair migration as it did before it existed.
    old = f"t_old_clone_{uuid.uuid4().hex[:8]}"
    with schema_context(settings.PUBLIC_SCHEMA_NAME), connection.cursor() as cursor:
        cursor.execute(CLONE_SCHEMA_FUNCTION.format(db_user=connection.settings_dict["USER"] or "postgres"))
        cursor.execute("SELECT public.clone_schema(%s, %s, 'DATA')", [settings.TENANT_BASE_SCHEMA, old])
    try:
        with schema_context(old):
            MigrationRecorder(connection).record_unapplied(*REPAIR_MIGRATION)
        broken = catalog_differences(schema_catalog(old), schema_catalog(migrated_schema))
        assert "affiliate_one_per_program" not in _constraint_names(old, "affiliates_affiliate")
        assert set(broken) >= {"constraints", "indexes", "sequences"}

        # When migrations run in it.
        with _without_djstripe_migrations():
            provisioning.schema_migrate(schema_name=old)

        # Then it has the catalog of a migrated tenant, and the repair is recorded.
        assert catalog_differences(schema_catalog(old), schema_catalog(migrated_schema)) == {}
        with schema_context(old):
            assert REPAIR_MIGRATION in MigrationRecorder(connection).applied_migrations()
    finally:
        _schema_drop(old)


# What the template does not have yet but migrations may add: a serial column (a sequence of
# its own, OWNED BY, a nextval() default), a standalone sequence used by a default, an exclusion
# constraint, a unique index with an expression, a view, a disabled trigger, comments on each.
_SAMPLE_SCHEMA = """
    CREATE SCHEMA {s};
    SET LOCAL search_path = {s};
    CREATE SEQUENCE invoice_number AS integer START 1000 INCREMENT 5;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE TABLE shop (id serial PRIMARY KEY, name text NOT NULL CHECK (name <> ''),
                       number integer NOT NULL DEFAULT nextval('invoice_number'),
                       slug text GENERATED ALWAYS AS (lower(name)) STORED) WITH (fillfactor = 90);
    CREATE TABLE visit (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                        shop_id integer NOT NULL CONSTRAINT visit_shop REFERENCES shop (id) DEFERRABLE,
                        room integer, CONSTRAINT one_room EXCLUDE USING btree (room WITH =));
    CREATE UNIQUE INDEX shop_lower_name ON shop (lower(name)) WHERE number > 0;
    CREATE TRIGGER shop_touch BEFORE UPDATE ON shop FOR EACH ROW EXECUTE FUNCTION touch();
    ALTER TABLE shop DISABLE TRIGGER shop_touch;
    CREATE VIEW busy_shop AS SELECT s.name, count(*) AS visits FROM shop s JOIN visit v ON v.shop_id = s.id GROUP BY 1;
    COMMENT ON TABLE shop IS 'shops';
    COMMENT ON COLUMN shop.name IS 'its name';
    COMMENT ON CONSTRAINT one_room ON visit IS 'one visit per room';
    COMMENT ON INDEX shop_lower_name IS 'names differ by more than case';
    COMMENT ON SEQUENCE invoice_number IS 'invoices';
    COMMENT ON TRIGGER shop_touch ON shop IS 'touch';
    COMMENT ON FUNCTION touch() IS 'does nothing';
    COMMENT ON VIEW busy_shop IS 'busy';
    INSERT INTO shop (name) VALUES ('a'), ('b');
    INSERT INTO visit (shop_id, room) VALUES (1, 1);
"""


@pytest.mark.django_db
def test_the_clone_function_copies_what_the_template_does_not_have_yet():
    source, target = f"t_sample_{uuid.uuid4().hex[:8]}", f"t_sample_copy_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(_SAMPLE_SCHEMA.format(s=source))
        cursor.execute("SELECT set_config('search_path', 'public', true)")

        cursor.execute("SELECT public.tenant_schema_clone(%s, %s)", [source, target])

        assert catalog_differences(schema_catalog(target), schema_catalog(source)) == {}
        assert sequence_values(target) == sequence_values(source)
        # The copy's defaults draw from the copy's sequences, which go on from the source's values.
        cursor.execute("SELECT set_config('search_path', %s, true)", [target])
        cursor.execute("INSERT INTO shop (name) VALUES ('c') RETURNING id, number")
        assert cursor.fetchone() == (3, 1010)
        cursor.execute("SELECT pg_sequence_last_value(%s::regclass)", [f"{source}.invoice_number"])
        assert cursor.fetchone() == (1005,)
        cursor.execute("SELECT set_config('search_path', 'public', true)")
