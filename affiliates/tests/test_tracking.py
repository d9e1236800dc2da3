"""The click buffer's own Redis connection: a dropped connection costs neither the click nor a
double count."""

from __future__ import annotations

import uuid

import pytest
import redis as redis_lib
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


def test_without_redis_the_click_is_inserted_directly(program, monkeypatch):
    from affiliates.models import Click

    target = tracking.target_resolve(code=factories.affiliate(program).code)
    monkeypatch.setattr(tracking, "_client", redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))

    result = tracking.click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.0.3", user_agent="Mozilla/5.0")

    assert result.recorded and Click.objects.filter(pk=result.click_id).exists()
