"""Recording a click: its id, its row, dedupe and bots, and the fall-back to the database."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection

from affiliates.models import Click
from affiliates.tests import factories
from affiliates.tracking import buffer
from affiliates.tracking.clicks import click_record, click_row, new_click_id, referrer_source
from affiliates.tracking.store import ClickRow
from affiliates.tracking.targets import Target, target_resolve
from tests.support.caches import caches_at

TARGET = Target(
    program_id=1,
    affiliate_id=2,
    affiliate_user_id=3,
    link_id=4,
    destination="https://shop.example.com/",
    cookie_days=30,
    usable=True,
    sub_ids={"sub1": "link", "sub2": "link"},
)
CLICK = uuid.UUID("0190a5e2-7c4d-7abc-8def-0123456789ab")
VISITOR = uuid.UUID("5f0c3f8e-2a52-4d3b-9d0e-6a1b2c3d4e5f")
AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_click_ids_are_uuid7_and_ordered_by_time():
    ids = []
    for _ in range(3):
        ids.append(new_click_id())
        time.sleep(0.002)

    assert [(i.version, i.variant) for i in ids] == [(7, uuid.RFC_4122)] * 3
    assert sorted(ids, key=lambda i: i.int) == ids
    assert abs((ids[0].int >> 80) - time.time_ns() // 1_000_000) < 5_000  # milliseconds since the epoch


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://Blog.Example.net/post", "blog.example.net"),
        ("https://[2001:db8::1]:8080/x", "2001:db8::1"),
        ("http://blog.example.net:8080", "blog.example.net"),
        ("android-app://com.example", "com.example"),
        ("/relative/path", ""),
        ("", ""),
        ("https://[broken/x", ""),  # malformed: no source rather than an error
        ("https://" + "a" * 300 + ".com/", "a" * 255),
    ],
)
def test_the_referrers_source(referrer, expected):
    assert referrer_source(referrer) == expected


def _row(
    *,
    target: Target = TARGET,
    source: str = "redirect",
    landing_url: str = "https://shop.example.com/",
    referrer: str = "",
    user_agent: str = "Mozilla/5.0",
    sub_ids: dict[str, str] | None = None,
    utm: dict[str, str] | None = None,
    is_self: bool = False,
) -> ClickRow:
    return click_row(
        click_id=CLICK,
        visitor=VISITOR,
        target=target,
        at=AT,
        source=source,
        landing_url=landing_url,
        referrer=referrer,
        user_agent=user_agent,
        hashed_ip="ab" * 16,
        sub_ids=sub_ids,
        utm=utm,
        is_self=is_self,
    )


def test_a_click_row():
    assert _row() == {
        "id": str(CLICK),
        "program_id": 1,
        "affiliate_id": 2,
        "link_id": 4,
        "visitor_id": str(VISITOR),
        "created_at": "2026-03-01T12:30:00+00:00",
        "source": "redirect",
        "landing_url": "https://shop.example.com/",
        "referrer": "",
        "user_agent": "Mozilla/5.0",
        "ip_hash": "ab" * 16,
        "sub_ids": {"sub1": "link", "sub2": "link"},
        "utm": {},
        "is_self": False,
        "src": "",
    }


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"sub_ids": {"sub1": "click"}}, "sub_ids", {"sub1": "click", "sub2": "link"}),  # the click's win
        ({"target": replace(TARGET, sub_ids=None)}, "sub_ids", {}),
        ({"utm": {"utm_source": "news"}}, "utm", {"utm_source": "news"}),
        ({"referrer": "https://Blog.Example.net/p"}, "src", "blog.example.net"),
        ({"referrer": "r" * 3000}, "referrer", "r" * 2048),
        ({"landing_url": "l" * 3000}, "landing_url", "l" * 2048),
        ({"user_agent": "u" * 600}, "user_agent", "u" * 512),
        ({"is_self": True, "source": "script"}, "is_self", True),
        ({"source": "script"}, "source", "script"),
    ],
)
def test_a_click_rows_fields(changes, field, expected):
    assert _row(**changes)[field] == expected


def test_a_repeat_within_the_dedupe_interval_answers_the_first_clicks_id(program):
    target = target_resolve(code=factories.affiliate(program).code)
    visitor = uuid.uuid4()

    first = click_record(target=target, visitor_id=visitor, ip="10.0.0.1", user_agent="Mozilla/5.0")
    again = click_record(target=target, visitor_id=visitor, ip="10.0.0.1", user_agent="Mozilla/5.0")

    assert (first.recorded, first.flagged) == (True, "")
    assert (again.recorded, again.click_id, again.visitor_id) == (False, first.click_id, visitor)


def test_a_bots_click_is_answered_and_not_recorded(program):
    target = target_resolve(code=factories.affiliate(program).code)
    stream = buffer.redis_client().xlen(buffer.stream_key(connection.schema_name))

    result = click_record(target=target, visitor_id=None, ip="10.0.0.1", user_agent="Googlebot/2.1")

    assert result.recorded is False
    assert result.visitor_id.version == 4  # a new visitor, for the cookie
    assert buffer.redis_client().xlen(buffer.stream_key(connection.schema_name)) == stream


def test_the_snippets_click_endpoint_works_through_a_hung_redis(program, hung_redis_url, tracker_on, client_at):
    """Its rate limit and the click buffer both live in Redis: the click is still recorded (in the
    database), answered 201 within the timeouts, not 500."""
    code = factories.affiliate(program).code
    host = f"{connection.tenant.slug}.{settings.PLATFORM_DOMAIN}"
    client_at(host).get("/api/v1/ping")  # the URLconf's first import is not what is timed
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
