"""The platform heals by itself after PostgreSQL goes away and comes back (issue 14, items 1, 2
and 6): beat keeps sending, workers reconnect on their next task, and a burst of requests on
the threaded development server stays within a bounded number of connections.

The outages are made by tests/pg_outage.py, a proxy between the process under test and the
shared test server: it cuts that process's connections and refuses new ones for a while, which
is what a `pg_ctl restart` does to it (the same "connection is lost" errors, then connection
failures), without restarting a server that other pytest workers use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from tests.pg_outage import PgOutageProxy
from tests.support.tenants import host_of

ROOT = Path(__file__).resolve().parents[1]
# How long a process under test may take to start: seconds usually, over a minute under load.
STARTUP = 120


def _poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _sessions(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return int(cursor.fetchone()[0])


@pytest.fixture
def pg_proxy() -> Iterator[PgOutageProxy]:
    db = connection.settings_dict
    proxy = PgOutageProxy(upstream_host=db["HOST"] or "127.0.0.1", upstream_port=int(db["PORT"] or 5432))
    yield proxy
    proxy.close()


def _database_url(proxy: PgOutageProxy, application_name: str) -> str:
    return proxy.url(
        database=connection.settings_dict["NAME"],
        user=connection.settings_dict["USER"],
        application_name=application_name,
    )


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start(argv: list[str], log: Path, **env: str) -> Process:
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env={**os.environ, "DJANGO_ENV": "test", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(proc=proc, log=log)


def _queue_length(queue: str) -> int:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


# -- item 1: beat --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_beat_keeps_sending_through_a_database_restart(make_tenant, pg_proxy, tmp_path):
    # given an active tenant and a real beat process reaching PostgreSQL through the proxy,
    # sending to a queue nobody consumes (so the test counts what it sent)
    make_tenant()
    queue = f"heal-beat-{uuid.uuid4().hex[:8]}"
    beat = _start(
        [
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "-S",
            "tenants.scheduler.ActiveTenantScheduler",
            "-s",
            str(tmp_path / "celerybeat-schedule"),
        ],
        tmp_path / "beat.log",
        DATABASE_URL=_database_url(pg_proxy, f"heal-beat-{uuid.uuid4().hex[:8]}"),
        CELERY_QUEUE=queue,
        CELERY_TASK_LOG_LEVEL="INFO",
    )
    try:
        # the click drain is due every second, once per active tenant (starting beat takes a few
        # seconds, over a minute on a machine under heavy load)
        assert _poll(lambda: _queue_length(queue) >= 2, timeout=STARTUP), beat.output()

        # when PostgreSQL goes away for 3 s (connections cut, new ones refused) and comes back
        with pg_proxy.outage():
            time.sleep(3)
        sent_after_restart = _queue_length(queue)

        # then beat is still running and sends again within a few seconds, without a restart
        assert _poll(lambda: _queue_length(queue) >= sent_after_restart + 2, timeout=30), beat.output()
        assert beat.proc.poll() is None, beat.output()
        # and it said why it skipped the ticks it could not read the tenants for
        assert "could not list the active tenants" in beat.output()
    finally:
        beat.stop()
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)


# -- item 2: workers -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_reconnects_on_its_next_task_after_a_database_restart(make_tenant, pg_proxy, tmp_path):
    from affiliates import tasks, tracking
    from affiliates.models import Click
    from affiliates.tests import factories

    # given a real worker reaching PostgreSQL through the proxy, reusing its connection between
    # tasks (CELERY_DB_REUSE_MAX as configured), which has already drained a tenant's clicks
    tenant = make_tenant().tenant
    connection.set_tenant(tenant)
    program = factories.program()
    target = tracking.target_resolve(code=factories.affiliate(program).code)
    assert target is not None

    def click(i: int) -> None:
        tracking.click_record(target=target, visitor_id=uuid.uuid4(), ip=f"10.9.0.{i}", user_agent="Mozilla/5.0")

    queue = f"heal-worker-{uuid.uuid4().hex[:8]}"
    worker = _start(
        [
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-Q",
            queue,
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        tmp_path / "worker.log",
        DATABASE_URL=_database_url(pg_proxy, f"heal-worker-{uuid.uuid4().hex[:8]}"),
        CELERY_QUEUE=queue,
        CELERY_TASK_LOG_LEVEL="INFO",
    )
    try:
        click(1)
        tasks.clicks_drain.apply_async(queue=queue)
        assert _poll(lambda: Click.objects.count() == 1, timeout=STARTUP), worker.output()

        # when PostgreSQL restarts (the worker's connection is cut, then the server is back)
        with pg_proxy.outage():
            time.sleep(1)

        # then the very next tasks drain again: no task fails on the dead connection
        for i in range(2, 5):
            click(i)
            tasks.clicks_drain.apply_async(queue=queue)
        assert _poll(lambda: Click.objects.count() == 4, timeout=30), worker.output()
        assert "the connection is lost" not in worker.output()
        assert "raised unexpected" not in worker.output()
    finally:
        worker.stop()
        connection.set_schema_to_public()
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)


# -- item 6: the threaded development server -----------------------------------------------------

BURST = 200
# The development profile's pool (settings: DATABASE_POOL_MAX_SIZE) is the web process's bound.
POOL_MAX = 8


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_burst_on_the_threaded_development_server_stays_within_the_pool(make_tenant, pg_proxy, tmp_path):
    from affiliates import services
    from affiliates.models import Conversion
    from affiliates.tests import factories

    # given a tenant with a program and an API key, and `manage.py runserver` (threaded, one thread per
    # request) with `make run`'s settings (DJANGO_ENV=development) on the test database
    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    factories.program()
    key = services.api_key_create(name="burst", scopes=["conversions:write"], by=provisioned.owner).secret
    connection.set_schema_to_public()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    application_name = f"heal-web-{uuid.uuid4().hex[:8]}"
    server = _start(
        ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        tmp_path / "runserver.log",
        DJANGO_ENV="development",
        DATABASE_URL=_database_url(pg_proxy, application_name),
        CELERY_QUEUE=f"heal-web-{uuid.uuid4().hex[:8]}",
    )
    url = f"http://127.0.0.1:{port}/api/v1/conversions"
    headers = {"Host": f"{host_of(provisioned)}:{port}", "Authorization": f"Bearer {key}"}
    try:
        assert _poll(lambda: _answers(f"http://127.0.0.1:{port}/api/v1/ping"), timeout=STARTUP), server.output()

        # when 200 conversions arrive at once, each on a thread of its own
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            from django.db import connections

            watcher = connections.create_connection("default")
            try:
                with watcher.cursor() as cursor:
                    while not done.is_set():
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name]
                        )
                        peak = max(peak, int(cursor.fetchone()[0]))
                        time.sleep(0.02)
            finally:
                watcher.close()

        statuses: list[int] = []
        resets: list[str] = []
        start = threading.Barrier(BURST)

        def convert(i: int) -> None:
            start.wait()
            body = {
                "external_id": f"burst-{i}",
                "event_type": "purchase",
                "amount": "10.00",
                "currency": "USD",
                "visitor_id": str(uuid.uuid4()),
            }
            # runserver's listen queue holds 10 connections: beyond that the kernel may reset a
            # connection before the server reads it. Nothing was processed then, and a conversion
            # is idempotent on its external_id anyway, so the client sends it again.
            for _ in range(10):
                try:
                    answer = requests.post(url, json=body, headers=headers, timeout=60)
                except requests.ConnectionError as exc:
                    resets.append(repr(exc))
                    time.sleep(0.2)
                    continue
                statuses.append(answer.status_code)
                return

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=convert, args=(i,)) for i in range(BURST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()

        # then the server never held more connections than its pool, and every conversion was
        # recorded once: none failed for want of a connection
        answered = {status: statuses.count(status) for status in set(statuses)}
        assert peak <= POOL_MAX, f"{peak} connections at the peak; answers: {answered}"
        assert answered == {201: BURST}, (answered, resets[:3], server.output()[-3000:])
        connection.set_tenant(provisioned.tenant)
        assert Conversion.objects.filter(external_id__startswith="burst-").count() == BURST
        connection.set_schema_to_public()
        # and once the burst is over they are the pool's, not one per finished request thread
        assert _sessions(application_name) <= POOL_MAX
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, headers={"Host": "localhost"}, timeout=2).status_code == 200
    except requests.RequestException:
        return False
