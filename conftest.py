"""Shared fixtures. Tests run against real PostgreSQL and Redis (embedded or from the
environment; see devtools.devenv). The test database is built once per session, including the
tenant template schema that signups clone. Helpers that tests import live in tests/support/;
nothing imports this module."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client

from tenants import provisioning, selectors, services
from tenants.models import Domain, Tenant
from tests.support.tenants import OWNER_PASSWORD, SESSION, unique_slug
from tests.support.workers import worker_start, worker_stop


def pytest_configure(config):
    # Parallel workers (pytest-xdist) each have a test database of their own but share Redis.
    # Keys that name a tenant schema are already apart (schemas carry the session's suffix);
    # the rest (the public schema's cache entries, routes by host, the local caches'
    # invalidation channel) get a prefix per worker. Real worker processes inherit it.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        from django.core.cache import caches

        if "settings" in caches.__dict__:
            raise RuntimeError("a cache was opened before the per-worker key prefix was set")
        prefix = f"{settings.CACHES['default']['KEY_PREFIX']}-{worker}"
        os.environ["CACHE_KEY_PREFIX"] = prefix
        settings.CACHES["default"]["KEY_PREFIX"] = prefix
        settings.CACHES["routing"]["KEY_PREFIX"] = f"{prefix}-routing"


# dj-stripe's migration history is replayed in no test database (see _djstripe_tables_from_models).
_DJSTRIPE = "djstripe"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory) -> None:
    """Before the test database is made: dj-stripe's migrations are swapped for an empty set, so
    that `migrate` builds our apps from their migrations and leaves dj-stripe's tables to
    `_djstripe_tables_from_models`."""
    package = tmp_path_factory.mktemp("migrations") / "djstripe_without_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(package.parent))
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, _DJSTRIPE: package.name}


def _djstripe_tables_from_models() -> None:
    """dj-stripe's tables in the public schema made from its models, as `migrate --run-syncdb`
    makes an app's without migrations, and its migrations recorded as applied there and in the
    tenant template, as `migrate` would leave them (in a tenant schema the router lets none of
    their operations run).

    Why: replaying that history costs over a minute of every test session, twice (the public
    schema and the template), almost all in one migration that removes 514 fields one at a time,
    each re-rendering the related models; our own apps' migrations are still replayed in full.
    The result was compared with a migrated test database (pg_dump of both schemas, migration
    rows, content types, permissions): the same but for column order and the id type of three
    tax-rate link tables nothing here uses (integer from the models, bigint from the migrations).
    `makemigrations --check` (part of `make test`, real settings) fails if dj-stripe's models and
    migrations ever disagree otherwise."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes
    from django.core.management.commands.migrate import Command as Migrate
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder
    from django_tenants.utils import schema_context

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        migrate = Migrate()
        migrate.verbosity = 0
        migrate.sync_apps(connection, [_DJSTRIPE])
    settings.MIGRATION_MODULES = {k: v for k, v in settings.MIGRATION_MODULES.items() if k != _DJSTRIPE}
    names = sorted(name for app, name in MigrationLoader(None).disk_migrations if app == _DJSTRIPE)
    for schema in (settings.PUBLIC_SCHEMA_NAME, settings.TENANT_BASE_SCHEMA):
        with schema_context(schema):
            recorder = MigrationRecorder(connection)
            applied = recorder.applied_migrations()
            for name in names:
                if (_DJSTRIPE, name) not in applied:
                    recorder.record_applied(_DJSTRIPE, name)
            # What post_migrate adds after dj-stripe's migrations (the template clones them too).
            create_contenttypes(apps.get_app_config(_DJSTRIPE), verbosity=0)
            create_permissions(apps.get_app_config(_DJSTRIPE), verbosity=0)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        provisioning.clone_function_install()
        services.platform_tenants_ensure()
        _djstripe_tables_from_models()


@pytest.fixture(scope="session", autouse=True)
def _celery_test_queue():
    # Tasks enqueued by tests go to a queue of their own, so a worker of `make run` sharing
    # the same Redis never picks up work that points at the test database.
    from config.celery import app

    queue = f"test-{SESSION}"
    app.conf.task_default_queue = queue
    yield queue
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(queue)


@pytest.fixture(autouse=True)
def _public_schema_first():
    # Every test starts on the public schema, whatever the previous one left the connection
    # on (a test that sets a tenant and fails before setting it back, or does not bother);
    # without this, a test's outcome could depend on which test ran before it.
    from django.db import connection

    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _fresh_tracking_cache():
    # The redirect caches code -> link lookups per process for a few seconds; a test that
    # changes a link or an affiliate and follows it at once must not see the previous answer.
    from affiliates import tracking

    tracking.targets_forget()
    tracking.buffer_resume()  # a test with Redis down must not send the next test's clicks around it
    yield


@pytest.fixture
def platform_ready(db) -> None:
    """Public and template tenant rows (a transactional test's flush removes them)."""
    services.platform_tenants_ensure()
    selectors.tenant_routes_forget(hosts=[settings.PLATFORM_DOMAIN])


@pytest.fixture
def make_tenant(platform_ready) -> Callable[..., services.ProvisionedTenant]:
    def make(*, slug: str | None = None, name: str = "Acme", email: str | None = None) -> services.ProvisionedTenant:
        slug = slug or unique_slug()
        return services.tenant_provision(
            name=name,
            subdomain=slug,
            owner_email=email or f"owner@{slug}.test",
            owner_password=OWNER_PASSWORD,
        )

    return make


# How many tenant schemas the session provisions for `reused_tenant` (two: the cross-tenant
# fixtures need a second one); a test asking for more gets real provisioning for the rest.
POOL_SIZE = 2


@pytest.fixture(scope="session")
def _tenant_pool(django_db_setup, django_db_blocker) -> list[str]:
    """Slugs of business tenants provisioned once per session, outside any test's transaction:
    their schemas (owner included) are committed, their Tenant and Domain rows removed again, so
    that no other test sees them among the platform's tenants; `_pooled` adds the rows inside the
    test's transaction. No welcome email is enqueued: a real worker test would receive it."""
    from unittest import mock

    from django.db import connection

    from tenants.tasks import welcome_email_send

    slugs = [unique_slug("pool") for _ in range(POOL_SIZE)]
    with django_db_blocker.unblock(), mock.patch.object(welcome_email_send, "apply_async"):
        for slug in slugs:
            services.tenant_provision(
                name="Acme", subdomain=slug, owner_email=f"owner@{slug}.test", owner_password=OWNER_PASSWORD
            )
        # In SQL: deleting a Tenant through the ORM drops its schema (django-tenants' post_delete).
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM tenants_domain WHERE tenant_id IN (SELECT id FROM tenants_tenant WHERE slug = ANY(%s))",
                [slugs],
            )
            cursor.execute("DELETE FROM tenants_tenant WHERE slug = ANY(%s)", [slugs])
    return slugs


def _redis_keys_forget(schema: str) -> None:
    """Delete every Redis key written for `schema` (click buffers and counters, cache entries
    prefixed with it), as a newly provisioned schema has none."""
    import redis

    schema_b = schema.encode()
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = [
            key
            for key in client.scan_iter(match=f"*{schema}*", count=1000)
            if key.startswith(schema_b + b":") or b":" + schema_b + b":" in key or key.endswith(b":" + schema_b)
        ]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _pooled(slug: str) -> services.ProvisionedTenant:
    """A pool tenant as `tenant_provision` would leave it, inside the test's transaction: its
    Tenant and Domain rows (rolled back with the test), no cached route or Redis state, new
    objects (nothing a previous test did to them in memory), a fresh handover token."""
    from django_tenants.utils import schema_context, tenant_context

    from accounts.models import User
    from accounts.services import login_token_issue

    host = f"{slug}.{settings.PLATFORM_DOMAIN}"
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        # save() finds the schema already there and leaves it as it is.
        tenant = Tenant(name="Acme", slug=slug, schema_name=services.schema_name_for(slug))
        tenant.save(verbosity=0)
        Domain.objects.create(domain=host, tenant=tenant, is_primary=True)
    selectors.tenant_routes_forget(hosts=[host])
    _redis_keys_forget(tenant.schema_name)
    with tenant_context(tenant):
        owner = User.objects.get(email=f"owner@{slug}.test")
        token = login_token_issue(user=owner)
    return services.ProvisionedTenant(
        tenant=tenant,
        owner=owner,
        url=selectors.tenant_url(tenant=tenant),
        login_url=selectors.tenant_url(tenant=tenant, path=f"/auth/handover?token={token}"),
    )


@pytest.fixture
def reused_tenant(request, _tenant_pool, make_tenant) -> Callable[[], services.ProvisionedTenant]:
    """Like `make_tenant()` for tests where a tenant is a given, not the subject: each call hands
    out the next tenant of the session's pool instead of provisioning one (a clone of the
    template takes 0.3-0.4 s here, and some 500 tests need a tenant). The test's transaction
    rolls back whatever it writes there, so every test starts from the pool tenant as
    provisioned. A test that commits (transaction=True, which also flushes the public tables)
    gets real provisioning, as does a call beyond the pool."""
    marker = request.node.get_closest_marker("django_db")
    marked = dict(zip(("transaction", "reset_sequences"), marker.args, strict=False)) | marker.kwargs if marker else {}
    commits = bool(marked.get("transaction") or marked.get("reset_sequences")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server", "django_db_reset_sequences")
    )
    handed_out = itertools.count()

    def take() -> services.ProvisionedTenant:
        index = next(handed_out)
        if commits or index >= len(_tenant_pool):
            return make_tenant()
        return _pooled(_tenant_pool[index])

    return take


@pytest.fixture
def hung_redis_url():
    """The address of a server that accepts connections and never answers (a Redis that hangs)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    threading.Thread(target=lambda: accepted.extend(server.accept() for _ in range(16)), daemon=True).start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


@pytest.fixture
def client_at() -> Callable[[str], Client]:
    """A test client whose requests all carry the given Host header."""

    def make(host: str) -> Client:
        return Client(HTTP_HOST=host)

    return make


@pytest.fixture
def public_client(platform_ready) -> Client:
    return Client(HTTP_HOST=settings.PLATFORM_DOMAIN)


@pytest.fixture
def worker(tmp_path, _celery_test_queue):
    """One real worker (see worker_start); yields the directory its emails are written to."""
    proc = worker_start(tmp_path, _celery_test_queue)
    try:
        yield tmp_path / "mail"
    finally:
        worker_stop(proc)
