"""The click buffer: its keys, its script's name, the thread's own connection, and the pause
after a failure."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import redis
from django.db import connection

from affiliates.models import Click
from affiliates.tests import factories
from affiliates.tracking import buffer
from affiliates.tracking.buffer import CLICK_SCRIPT, SCRIPT_SHA, click_keys, dedupe_key, stream_key
from affiliates.tracking.clicks import click_record
from affiliates.tracking.targets import target_resolve

VISITOR = uuid.UUID("5f0c3f8e-2a52-4d3b-9d0e-6a1b2c3d4e5f")


def test_a_clicks_keys():
    keys = click_keys(
        schema="t_shop", visitor=VISITOR, link_id=7, hashed_ip="ab12", at=datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    )

    assert keys == [
        f"clk:dd:t_shop:{VISITOR}:7",
        "clk:ip:t_shop:ab12",
        f"clk:vi:t_shop:{VISITOR}",
        "clk:uv:t_shop:20260301:7",
        "clicks:t_shop",
    ]
    assert keys[0] == dedupe_key("t_shop", VISITOR, 7)
    assert keys[-1] == stream_key("t_shop")


def test_the_scripts_digest_is_the_one_redis_names_it_by():
    registered = redis.Redis().register_script(CLICK_SCRIPT)  # computed locally, no connection

    assert registered.sha == SCRIPT_SHA


def _stream_entries() -> int:
    return buffer.redis_client().xlen(stream_key(connection.schema_name))


def test_a_click_after_redis_dropped_the_connection_is_buffered_once(program):
    target = target_resolve(code=factories.affiliate(program).code)
    first = click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.0.1", user_agent="Mozilla/5.0")
    buffered = _stream_entries()
    # Redis closes the thread's connection (as a restart or an idle timeout would).
    own = buffer._script_connection.conn
    host, port = own._sock.getsockname()[:2]
    assert buffer.redis_client().client_kill_filter(addr=f"{host}:{port}") == 1

    second = click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.0.2", user_agent="Mozilla/5.0")

    assert first.recorded and second.recorded and second.click_id != first.click_id
    assert _stream_entries() == buffered + 1  # buffered, once, not inserted directly
    assert buffer._script_connection.conn is own  # the same object, reconnected


def test_a_hung_redis_costs_one_redirect_its_timeout_and_the_next_ones_nothing(program, hung_redis_url, tracker_on):
    target = target_resolve(code=factories.affiliate(program).code)
    tracker_on(hung_redis_url)
    timings, results = [], []
    for n in range(3):
        started = time.monotonic()
        results.append(click_record(target=target, visitor_id=uuid.uuid4(), ip=f"10.0.1.{n}", user_agent="Mozilla/5.0"))
        timings.append(time.monotonic() - started)

    assert all(r.recorded for r in results)
    assert Click.objects.filter(pk__in=[r.click_id for r in results]).count() == 3  # inserted directly
    assert 0.4 < timings[0] < 1.5  # one socket timeout, no retries
    assert max(timings[1:]) < 0.25  # the buffer is paused: straight to the database


def test_the_buffer_is_tried_again_once_the_pause_is_over(program, monkeypatch):
    target = target_resolve(code=factories.affiliate(program).code)
    monkeypatch.setattr(buffer, "_paused_until", time.monotonic() + 60)
    paused = click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.2.1", user_agent="Mozilla/5.0")
    buffered = _stream_entries()

    buffer.buffer_resume()
    resumed = click_record(target=target, visitor_id=uuid.uuid4(), ip="10.0.2.2", user_agent="Mozilla/5.0")

    assert Click.objects.filter(pk=paused.click_id).exists()  # while paused: straight to the database
    assert not Click.objects.filter(pk=resumed.click_id).exists()
    assert _stream_entries() == buffered + 1
