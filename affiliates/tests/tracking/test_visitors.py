"""Who clicks: the visitor cookie, the client address behind trusted proxies, the address's
keyed hash and the bot check. No database."""

from __future__ import annotations

import uuid

import pytest

from affiliates.tracking.visitors import client_ip, ip_hash, is_bot, visitor_from_cookie

VISITOR = uuid.UUID("0190a5e2-7c4d-7abc-8def-0123456789ab")


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        (str(VISITOR), VISITOR),
        (str(VISITOR).upper(), VISITOR),
        (VISITOR.hex, VISITOR),
        (None, None),
        ("", None),
        ("not-a-uuid", None),
        (str(VISITOR) + "0", None),
    ],
)
def test_the_visitor_cookie(cookie, expected):
    assert visitor_from_cookie(cookie) == expected


@pytest.mark.parametrize(
    ("num_proxies", "meta", "expected"),
    [
        (None, {"REMOTE_ADDR": "10.0.0.1"}, "10.0.0.1"),
        (None, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, "10.0.0.1"),  # not trusted
        (None, {}, ""),
        (1, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, "203.0.113.7"),
        (1, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"}, "203.0.113.7"),
        (2, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"}, "198.51.100.1"),
        (2, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, "10.0.0.1"),  # too few hops
        (1, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "forged"}, "10.0.0.1"),
        (1, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": " 2001:DB8::1 "}, "2001:db8::1"),
        (1, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": " , "}, "10.0.0.1"),
    ],
)
def test_the_client_address(settings, num_proxies, meta, expected):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}

    assert client_ip(meta) == expected


def test_the_address_hash_is_keyed_per_tenant():
    first = ip_hash("203.0.113.7", "tenant_a")

    assert len(first) == 32
    assert first == ip_hash("203.0.113.7", "tenant_a")
    assert first != ip_hash("203.0.113.7", "tenant_b")
    assert first != ip_hash("203.0.113.8", "tenant_a")
    assert "203.0.113.7" not in first


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        ("", True),  # a script, not a person following a link
        ("   ", True),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", True),
        ("curl/8.4.0", True),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", False),
        ("Mozilla/5.0 (Macintosh) Safari/605.1", False),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0 " + "x" * 600, False),  # too long to cache
        ("Googlebot/2.1 " + "x" * 600, True),
    ],
)
def test_bots(user_agent, expected):
    assert is_bot(user_agent) is expected
