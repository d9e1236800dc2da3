"""Shared fixtures. Tests run against real PostgreSQL and Redis (embedded or from the
environment; see config.devenv). The test database is built once per session, including the
tenant template schema that signups clone."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client

from tenants import provisioning, selectors, services

_SESSION = uuid.uuid4().hex[:6]
_counter = itertools.count(1)
OWNER_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        provisioning.clone_function_install()
        services.platform_tenants_ensure()


@pytest.fixture(scope="session", autouse=True)
def _celery_test_queue():
    # Tasks enqueued by tests go to a queue of their own, so a worker of `make run` sharing
    # the same Redis never picks up work that points at the test database.
    from config.celery import app

    queue = f"test-{_SESSION}"
    app.conf.task_default_queue = queue
    yield queue
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(queue)


@pytest.fixture(autouse=True)
def _fresh_tracking_cache():
    # The redirect caches code -> link lookups per process for a few seconds; a test that
    # changes a link or an affiliate and follows it at once must not see the previous answer.
    from affiliates import tracking

    tracking.targets_forget()
    yield


@pytest.fixture
def platform_ready(db) -> None:
    """Public and template tenant rows (a transactional test's flush removes them)."""
    services.platform_tenants_ensure()
    selectors.tenant_routes_forget(hosts=[settings.PLATFORM_DOMAIN])


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{_SESSION}-{next(_counter)}"


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


def host_of(provisioned: services.ProvisionedTenant) -> str:
    return f"{provisioned.tenant.slug}.{settings.PLATFORM_DOMAIN}"


@pytest.fixture
def client_at() -> Callable[[str], Client]:
    """A test client whose requests all carry the given Host header."""

    def make(host: str) -> Client:
        return Client(HTTP_HOST=host)

    return make


@pytest.fixture
def public_client(platform_ready) -> Client:
    return Client(HTTP_HOST=settings.PLATFORM_DOMAIN)


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{db['USER']}@{host}{port}/{db['NAME']}"


def worker_start(directory: Path, queue: str) -> subprocess.Popen:
    """A real Celery worker process (solo pool) on the test database and `queue`; its environment
    is the test's at the time (so monkeypatched STRIPE_* variables reach it). It writes its log
    and its emails under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),  # the test database, where the tests commit
        "DJANGO_ENV": "test",
        # Tasks the worker itself enqueues (a payout run's batches) go to the queue it consumes.
        "CELERY_QUEUE": queue,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(directory / "mail"),
    }
    with (directory / "worker.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", queue,
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=Path(__file__).resolve().parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def worker_stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def worker(tmp_path, _celery_test_queue):
    """One real worker (see worker_start); yields the directory its emails are written to."""
    proc = worker_start(tmp_path, _celery_test_queue)
    try:
        yield tmp_path / "mail"
    finally:
        worker_stop(proc)
