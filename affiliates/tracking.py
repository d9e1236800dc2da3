"""Click tracking: the hot path behind `/r/<code>` and the snippet's click endpoint.

Clicks are buffered durably in a per-tenant Redis stream and written to PostgreSQL in batches
(by `clicks_drain`, which a Celery beat task runs every second, and which conversion ingestion
runs first so that a conversion arriving right after its click still sees it). One synchronous
commit per click is what holds other click trackers to a few hundred clicks per second on a
small machine; a stream append costs one Redis round trip. The stream entry is deleted only
after the rows are committed, and rows are inserted with ON CONFLICT DO NOTHING on the click
id, so a drain that dies half-way is repeated without loss or double counting. If Redis cannot
be reached, the click is inserted directly instead (counted, but not deduplicated), and so are
the process's clicks of the next BUFFER_PAUSE_SECONDS, without trying Redis.

One Lua script does, in a single round trip and atomically: the per-visitor dedupe (a repeat
within DEDUPE_SECONDS returns the first click's id and records nothing), the flood counters
per IP and per visitor (beyond the limit the click is stored flagged and does not count), the
per-day unique-visitor check, and the stream append.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis
from crawlerdetect import CrawlerDetect
from django.conf import settings
from django.db import connection, transaction
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

logger = logging.getLogger(__name__)

DEDUPE_SECONDS = 30
FLOOD_WINDOW_SECONDS = 60
FLOOD_LIMIT_PER_IP = 60
FLOOD_LIMIT_PER_VISITOR = 20
DRAIN_BATCH = 2000
CLICK_PARAM = "ac_click"
VISITOR_COOKIE = "ac_vid"

_SCRIPT = """
local first = redis.call('GET', KEYS[1])
if first then return {0, first, ''} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local flagged = ''
local per_ip = redis.call('INCR', KEYS[2])
if per_ip == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
local per_visitor = redis.call('INCR', KEYS[3])
if per_visitor == 1 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
if per_ip > tonumber(ARGV[4]) or per_visitor > tonumber(ARGV[5]) then flagged = 'flood' end
local uv = 0
if flagged == '' then
  uv = redis.call('SADD', KEYS[4], ARGV[6])
  if uv == 1 then redis.call('EXPIRE', KEYS[4], 172800) end
end
redis.call('XADD', KEYS[5], '*', 'c', ARGV[7], 'f', flagged, 'u', uv)
return {1, ARGV[1], flagged}
"""


@dataclass(frozen=True)
class Target:
    """What a referral code (and optional link slug) resolves to."""

    program_id: int
    affiliate_id: int
    affiliate_user_id: int
    link_id: int
    destination: str
    cookie_days: int
    usable: bool  # program active, affiliate approved, link active
    sub_ids: dict[str, str] | None = None  # the link's own, overridden by a click's query
    allowed_domains: tuple[str, ...] = ()  # the program's, for the snippet endpoint's CORS check


@dataclass(frozen=True)
class ClickResult:
    click_id: uuid.UUID
    visitor_id: uuid.UUID
    recorded: bool  # False: a repeat within the dedupe interval, or a bot
    flagged: str = ""


_detector = CrawlerDetect()
# After the buffer fails a redirect, the redirects of the next seconds insert directly instead of
# each waiting out the timeout against a Redis that hangs (half a second a click). Conversions
# still try the buffer every time (see clicks_flush): they must see clicks buffered before.
BUFFER_PAUSE_SECONDS = 5.0
_buffer_paused_until = 0.0


def _buffer_pause() -> None:
    global _buffer_paused_until
    _buffer_paused_until = time.monotonic() + BUFFER_PAUSE_SECONDS


def buffer_resume() -> None:
    """Try the buffer again on the next click (tests; a pause otherwise ends by itself)."""
    global _buffer_paused_until
    _buffer_paused_until = 0.0


_client_lock = threading.Lock()
_client: redis.Redis | None = None
_script = None


def _redis() -> redis.Redis:
    global _client, _script
    if _client is None:
        with _client_lock:
            if _client is None:
                # Short timeouts and, said explicitly, no retries: a slow Redis must not hold a redirect
                # (the fallback inserts directly). redis-py's retry defaults differ by constructor and
                # version: against a server that accepts and never answers, a client made with
                # Redis(host=...) took 9.6 s for one call, one made from a URL 0.5 s.
                _client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
                )
                _script = _client.register_script(_SCRIPT)
    return _client


class _ScriptConnection(threading.local):
    conn: redis.Connection | None = None
    pid: int = 0
    client: redis.Redis | None = None  # the one it was made from (tests swap in a dead one)


_script_connection = _ScriptConnection()


def _script_connection_get() -> redis.Connection:
    local = _script_connection
    client, pid = _redis(), os.getpid()
    if local.conn is None or local.pid != pid or local.client is not client:  # never a parent's socket
        pool = client.connection_pool
        local.conn, local.pid, local.client = pool.connection_class(**pool.connection_kwargs), pid, client
    return local.conn


def _script_run(conn: redis.Connection, keys: list[str], args: list) -> list:
    try:
        conn.send_command("EVALSHA", _script.sha, len(keys), *keys, *args)
        return conn.read_response()
    except NoScriptError:  # Redis restarted or its script cache was flushed
        conn.send_command("EVAL", _SCRIPT, len(keys), *keys, *args)
        return conn.read_response()


def _script_call(keys: list[str], args: list) -> list:
    """The click script over a connection of this thread's own, outside redis-py's pool.

    The pool's way (checkout, retry wrapper, observability hooks, release) costs about 20 µs of
    CPU per call against 10 µs for the command itself, on a path that runs once per redirect
    (measured with 20,000 calls in process). A broken connection is retried once (the
    connection reconnects on its next command): a script that did run before its answer was
    lost has set the dedupe key, so the retry returns the first click's id instead of counting
    the click twice."""
    conn = _script_connection_get()
    try:
        return _script_run(conn, keys, args)
    except RedisConnectionError:
        conn.disconnect()
        return _script_run(conn, keys, args)


def stream_key(schema: str) -> str:
    return f"clicks:{schema}"


def dedupe_key(schema: str, visitor: uuid.UUID, link_id: int) -> str:
    return f"clk:dd:{schema}:{visitor}:{link_id}"


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


def new_click_id() -> uuid.UUID:
    """Time-ordered (UUIDv7 layout), so the clicks' primary-key index grows at its right edge."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (ms & ((1 << 48) - 1)) << 80
        | (0x7 << 76)
        | ((rand >> 68) & 0xFFF) << 64
        | (0b10 << 62)
        | (rand & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def ip_hash(ip: str) -> str:
    """Keyed per tenant: the same address gives unrelated hashes in two tenants, and nobody
    without the secret key can test guesses against a stored hash."""
    return hmac.digest(_ip_key(), f"{connection.schema_name}:{ip}".encode(), "sha256").hex()[:32]


@functools.cache
def _ip_key() -> bytes:
    return hashlib.sha256(f"{settings.SECRET_KEY}:click-ip".encode()).digest()


def client_ip(meta: dict) -> str:
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


def visitor_from_cookie(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# Per-process cache of code -> target. The redirect is the hot path, and a three-table lookup
# costs more than everything else it does; a change to a link, an affiliate's status or a
# program reaches the redirect within TARGET_CACHE_SECONDS. Attribution reads the database, so
# a click recorded in that window for a just-suspended affiliate never earns anything.
TARGET_CACHE_SECONDS = 10.0
_targets: dict[tuple[str, str, str], tuple[float, Target | None]] = {}
_TARGETS_MAX = 50_000


def target_resolve(*, code: str, slug: str = "") -> Target | None:
    key = (connection.schema_name, code.lower(), slug.lower())
    now = time.monotonic()
    hit = _targets.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    target = _target_query(code=code, slug=slug)
    if len(_targets) >= _TARGETS_MAX:
        _targets.clear()
    _targets[key] = (now + TARGET_CACHE_SECONDS, target)
    return target


def targets_forget() -> None:
    _targets.clear()


def _target_query(*, code: str, slug: str = "") -> Target | None:
    """One indexed query: the code's link with its affiliate and program."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id, a.id, a.user_id, l.id, l.destination_url, p.default_destination, "
            "p.cookie_window_days, p.is_active AND a.status = 'approved' AND l.is_active, l.sub_ids, "
            "p.allowed_domains "
            "FROM affiliates_affiliate a "
            "JOIN affiliates_program p ON p.id = a.program_id "
            "JOIN affiliates_link l ON l.affiliate_id = a.id AND l.slug = %s "
            "WHERE a.code = %s",
            [slug.lower(), code.lower()],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    program_id, affiliate_id, user_id, link_id, link_dest, program_dest, cookie_days, usable, sub_ids, domains = row
    return Target(
        program_id=program_id,
        affiliate_id=affiliate_id,
        affiliate_user_id=user_id,
        link_id=link_id,
        destination=link_dest or program_dest,
        cookie_days=cookie_days,
        usable=bool(usable),
        sub_ids=(json.loads(sub_ids) if isinstance(sub_ids, str) else sub_ids) or None,
        allowed_domains=tuple(domains or ()),
    )


def _encode(values: dict) -> bytes:
    return json.dumps(values, separators=(",", ":"), default=str).encode()


def click_record(
    *,
    target: Target,
    visitor_id: uuid.UUID | None,
    ip: str,
    user_agent: str,
    landing_url: str = "",
    referrer: str = "",
    sub_ids: dict[str, str] | None = None,
    utm: dict[str, str] | None = None,
    is_self: bool = False,
    source: str = "redirect",
    at: datetime | None = None,
) -> ClickResult:
    visitor = visitor_id or uuid.uuid4()
    click_id = new_click_id()
    if is_bot(user_agent):
        return ClickResult(click_id=click_id, visitor_id=visitor, recorded=False)
    now = at or datetime.now(UTC)
    hashed_ip = ip_hash(ip) if ip else ""
    row = {
        "id": str(click_id),
        "program_id": target.program_id,
        "affiliate_id": target.affiliate_id,
        "link_id": target.link_id,
        "visitor_id": str(visitor),
        "created_at": now.isoformat(),
        "source": source,
        "landing_url": landing_url[:2048],
        "referrer": referrer[:2048],
        "user_agent": user_agent[:512],
        "ip_hash": hashed_ip,
        "sub_ids": {**(target.sub_ids or {}), **(sub_ids or {})},
        "utm": utm or {},
        "is_self": is_self,
        "src": _source_of(referrer) if referrer else "",
    }
    schema = connection.schema_name
    day = now.strftime("%Y%m%d")
    keys = [
        dedupe_key(schema, visitor, target.link_id),
        f"clk:ip:{schema}:{hashed_ip}",
        f"clk:vi:{schema}:{visitor}",
        f"clk:uv:{schema}:{day}:{target.link_id}",
        stream_key(schema),
    ]
    args = [str(click_id), DEDUPE_SECONDS, FLOOD_WINDOW_SECONDS, FLOOD_LIMIT_PER_IP, FLOOD_LIMIT_PER_VISITOR]
    answer = None
    if time.monotonic() >= _buffer_paused_until:
        try:
            answer = _script_call(keys, [*args, str(visitor), _encode(row)])
        except RedisError:
            _buffer_pause()
            logger.warning(
                "click buffer unavailable; inserting clicks directly for %ss", BUFFER_PAUSE_SECONDS, exc_info=True
            )
    if answer is None:
        _insert_direct(row)
        return ClickResult(click_id=click_id, visitor_id=visitor, recorded=True)
    created, first_id, flagged = answer
    if not created:
        return ClickResult(click_id=uuid.UUID(first_id.decode()), visitor_id=visitor, recorded=False)
    return ClickResult(click_id=click_id, visitor_id=visitor, recorded=True, flagged=flagged.decode())


def _insert_direct(row: dict) -> None:
    from affiliates.models import Click

    with transaction.atomic():
        today_seen = Click.objects.filter(
            visitor_id=row["visitor_id"],
            link_id=row["link_id"],
            created_at__date=datetime.fromisoformat(row["created_at"]).date(),
            flagged="",
        ).exists()
        _store_batch(_encode([{**row, "f": "", "u": 0 if today_seen else 1}]))


def _source_of(referrer: str) -> str:
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        host = ""
    return host[:255]


# One statement per batch, so the per-click work runs in PostgreSQL rather than in Python:
# insert the clicks (skipping ids already stored: a repeated drain), then add the inserted,
# unflagged ones to the daily rollups. Rollup rows are locked in (date, program, affiliate,
# link NULLS LAST) order, the order `rollups.stats_add` uses, so a drain and a conversion
# touching the same rows cannot deadlock.
_BATCH_SQL = """
WITH batch AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS b(
        id uuid, program_id bigint, affiliate_id bigint, link_id bigint, visitor_id uuid,
        created_at timestamptz, source text, landing_url text, referrer text, user_agent text,
        ip_hash text, sub_ids jsonb, utm jsonb, is_self boolean, f text, u int, src text)
), inserted AS (
    INSERT INTO affiliates_click (id, program_id, affiliate_id, link_id, visitor_id, created_at, source,
        landing_url, referrer, user_agent, ip_hash, sub_ids, utm, is_self, flagged)
    SELECT id, program_id, affiliate_id, link_id, visitor_id, created_at, source, landing_url, referrer,
           user_agent, ip_hash, coalesce(sub_ids, '{}'), coalesce(utm, '{}'), is_self, f
    FROM batch
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), counted AS (
    SELECT (b.created_at AT TIME ZONE 'UTC')::date AS day, b.program_id, b.affiliate_id, b.link_id, b.u,
           coalesce(b.src, '') AS src
    FROM batch b JOIN inserted USING (id)
    WHERE b.f = ''
), stats AS (
    INSERT INTO affiliates_dailystat (date, program_id, affiliate_id, link_id, clicks, unique_visitors,
        conversions, revenue_minor, commission_pending_minor, commission_approved_minor, commission_paid_minor)
    SELECT day, program_id, affiliate_id, link_id, count(*), sum(u), 0, 0, 0, 0, 0
    FROM counted GROUP BY day, program_id, affiliate_id, link_id
    ORDER BY day, program_id, affiliate_id, link_id NULLS LAST
    ON CONFLICT (date, affiliate_id, link_id) DO UPDATE
    SET clicks = affiliates_dailystat.clicks + excluded.clicks,
        unique_visitors = affiliates_dailystat.unique_visitors + excluded.unique_visitors
), sources AS (
    INSERT INTO affiliates_dailysource (date, program_id, affiliate_id, source, clicks)
    SELECT day, program_id, affiliate_id, src, count(*)
    FROM counted GROUP BY day, program_id, affiliate_id, src
    ORDER BY day, program_id, affiliate_id, src
    ON CONFLICT (date, affiliate_id, source) DO UPDATE
    SET clicks = affiliates_dailysource.clicks + excluded.clicks
)
SELECT count(*) FROM inserted
"""


def _store_batch(batch: bytes) -> int:
    """Store a JSON array of click rows (each with "f": flag and "u": 1 for the day's first
    visit) and add them to the rollups. Runs inside the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_SQL, [batch.decode()])
        return cursor.fetchone()[0]


def _batch_of(entries: list) -> bytes:
    """The stream entries as one JSON array, by splicing bytes: the row is already JSON, so the
    flag and the unique-visit mark only need to be put in front of its fields."""
    parts = []
    for _entry_id, fields in entries:
        row = fields[b"c"]
        parts.append(b'{"f":"' + fields[b"f"] + b'","u":' + (fields[b"u"] or b"0") + b"," + row[1:])
    return b"[" + b",".join(parts) + b"]"


def clicks_drain(*, max_batches: int = 50) -> int:
    """Move buffered clicks of the current tenant from Redis to PostgreSQL. Returns how many
    rows were inserted. Safe to run concurrently (an advisory lock serialises drains of one
    tenant) and to repeat after a crash (ON CONFLICT DO NOTHING, deletes after commit)."""
    key = stream_key(connection.schema_name)
    client = _redis()
    total = 0
    for _ in range(max_batches):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
            entries = client.xrange(key, count=DRAIN_BATCH)
            if not entries:
                return total
            total += _store_batch(_batch_of(entries))
        # After the commit: a crash before this line only means the next drain re-reads
        # entries whose rows exist, and ON CONFLICT skips them (the rollups count inserted rows).
        client.xdel(key, *[entry_id for entry_id, _ in entries])
        if len(entries) < DRAIN_BATCH:
            return total
    return total


def clicks_flush() -> None:
    """Make every click buffered so far visible in the database (conversions call this first)."""
    try:
        if _redis().xlen(stream_key(connection.schema_name)):
            clicks_drain()
    except RedisError:
        # Without Redis the clicks were inserted directly; nothing is waiting.
        logger.warning("click buffer unavailable while flushing", exc_info=True)
