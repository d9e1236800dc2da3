"""Who is clicking: the visitor's cookie, its address (and the address's keyed hash), and whether
it is a bot. All pure, apart from the settings they read."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Mapping

from crawlerdetect import CrawlerDetect
from django.conf import settings

VISITOR_COOKIE = "ac_vid"

_detector = CrawlerDetect()


def visitor_from_cookie(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def client_ip(meta: Mapping[str, str]) -> str:
    """The visitor's address: REMOTE_ADDR, or with NUM_PROXIES trusted proxies in front, the
    address the outermost of them saw (when X-Forwarded-For holds a valid one there)."""
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    if num_proxies:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= num_proxies:
            candidate = forwarded[-num_proxies]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass
    return meta.get("REMOTE_ADDR", "")


def ip_hash(ip: str, schema: str) -> str:
    """Keyed per tenant (`schema`): the same address gives unrelated hashes in two tenants, and
    nobody without the secret key can test guesses against a stored hash."""
    return hmac.digest(_ip_key(), f"{schema}:{ip}".encode(), "sha256").hex()[:32]


@functools.cache
def _ip_key() -> bytes:
    return hashlib.sha256(f"{settings.SECRET_KEY}:click-ip".encode()).digest()


def is_bot(user_agent: str) -> bool:
    # An empty agent is a script, not a person following a link.
    if not user_agent.strip():
        return True
    # Agents of a plausible length are cached (bounded memory however varied the traffic): the
    # crawler patterns cost about 13 µs an agent, and most visitors share a few browser builds.
    return _is_crawler(user_agent) if len(user_agent) <= 512 else _detector.is_crawler(user_agent)


@functools.lru_cache(maxsize=4096)
def _is_crawler(user_agent: str) -> bool:
    return _detector.is_crawler(user_agent)
