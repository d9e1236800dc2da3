"""The click buffer's own Redis connection: a dropped connection costs neither the click nor a
double count."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from affiliates import tracking
from affiliates.tests import factories


@pytest.fixture
def program(make_tenant):
    connection.set_tenant(make_tenant().tenant)
    yield factories.program()
    connection.set_schema_to_public()


def _stream_entries() -> int:
    return tracking._redis().xlen(tracking.stream_key(connection.schema_name))


def test_a_click_after_redis_dropped_the_connection_is_buffered_once(program):
    target = tracking.target_resolve(code=factories.affiliate(program).code)
    first = tracking.click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.0.1", user_agent="Mozilla/5.0")
    buffered = _stream_entries()
    # Redis closes the thread's connection (as a restart or an idle timeout would).
    own = tracking._script_connection.conn
    host, port = own._sock.getsockname()[:2]
    assert tracking._redis().client_kill_filter(addr=f"{host}:{port}") == 1

    second = tracking.click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.0.2", user_agent="Mozilla/5.0")

    assert first.recorded and second.recorded and second.click_id != first.click_id
    assert _stream_entries() == buffered + 1  # buffered, once, not inserted directly
    assert tracking._script_connection.conn is own  # the same object, reconnected


@pytest.fixture
def tracker_on(monkeypatch, settings):
    """Point the tracker's own client (built from settings, as in production) at `url`."""

    def point(url: str) -> None:
        settings.REDIS_URL = url
        monkeypatch.setattr(tracking, "_client", None)

    return point


def test_a_hung_redis_costs_one_redirect_its_timeout_and_the_next_ones_nothing(program, hung_redis_url, tracker_on):
    import time

    from affiliates.models import Click

    target = tracking.target_resolve(code=factories.affiliate(program).code)
    tracker_on(hung_redis_url)
    timings, results = [], []
    for n in range(3):
        started = time.monotonic()
        results.append(
            tracking.click_record(target=target, visitor_id=uuid.uuid4(), ip=f"10.0.1.{n}", user_agent="Mozilla/5.0")
        )
        timings.append(time.monotonic() - started)

    assert all(r.recorded for r in results)
    assert Click.objects.filter(pk__in=[r.click_id for r in results]).count() == 3  # inserted directly
    assert 0.4 < timings[0] < 1.5  # one socket timeout, no retries
    assert max(timings[1:]) < 0.25  # the buffer is paused: straight to the database


def test_a_conversions_flush_fails_fast_against_a_hung_redis(program, hung_redis_url, tracker_on):
    """A conversion flushes the buffer first; against a Redis that hangs it waits the tracker's
    timeout, no retries (a redis-py client built with Redis(host=...) took 9.6 s here)."""
    import time

    tracker_on(hung_redis_url)
    started = time.monotonic()

    tracking.clicks_flush()

    assert time.monotonic() - started < 1.5


def test_the_snippets_click_endpoint_works_through_a_hung_redis(program, hung_redis_url, tracker_on, client_at):
    """Its rate limit and the click buffer both live in Redis: the click is still recorded (in the
    database), answered 201 within the timeouts, not 500."""
    import time

    from django.conf import settings

    from affiliates.models import Click
    from tests.support.caches import caches_at

    code = factories.affiliate(program).code
    host = f"{connection.tenant.slug}.{settings.PLATFORM_DOMAIN}"
    tracker_on(hung_redis_url)
    with caches_at(hung_redis_url):
        started = time.monotonic()
        response = client_at(host).post(
            "/api/v1/track/clicks", {"code": code}, content_type="application/json", HTTP_USER_AGENT="Mozilla/5.0"
        )
        elapsed = time.monotonic() - started

    assert response.status_code == 201, response.content
    assert Click.objects.filter(pk=response.json()["click_id"]).exists()
    assert elapsed < 3
