"""Click tracking, split by what each part does:

- `targets`: a referral code (and link slug) resolved to its redirect target, cached in process;
- `visitors`: who clicks (the visitor cookie, the address and its keyed hash, the bot check);
- `clicks`: recording a click (the hot path behind `/r/<code>` and the snippet's endpoint);
- `buffer`: the per-tenant Redis stream, its Lua script, the thread's connection, the pause;
- `store`: click rows into PostgreSQL with their rollups, in one statement per batch;
- `drain`: buffered clicks into PostgreSQL (the beat task, and conversions before they attribute).

The names other modules call are exported here.
"""

from __future__ import annotations

from affiliates.tracking.buffer import (
    BUFFER_PAUSE_SECONDS,
    DEDUPE_SECONDS,
    FLOOD_LIMIT_PER_IP,
    FLOOD_LIMIT_PER_VISITOR,
    FLOOD_WINDOW_SECONDS,
    buffer_resume,
    dedupe_key,
    redis_client,
    stream_key,
)
from affiliates.tracking.clicks import CLICK_PARAM, ClickResult, click_record, new_click_id
from affiliates.tracking.drain import DRAIN_BATCH, clicks_drain, clicks_flush
from affiliates.tracking.targets import TARGET_CACHE_SECONDS, Target, target_resolve, targets_forget
from affiliates.tracking.visitors import VISITOR_COOKIE, client_ip, ip_hash, is_bot, visitor_from_cookie

__all__ = [
    "BUFFER_PAUSE_SECONDS",
    "CLICK_PARAM",
    "DEDUPE_SECONDS",
    "DRAIN_BATCH",
    "FLOOD_LIMIT_PER_IP",
    "FLOOD_LIMIT_PER_VISITOR",
    "FLOOD_WINDOW_SECONDS",
    "TARGET_CACHE_SECONDS",
    "VISITOR_COOKIE",
    "ClickResult",
    "Target",
    "buffer_resume",
    "click_record",
    "clicks_drain",
    "clicks_flush",
    "client_ip",
    "dedupe_key",
    "ip_hash",
    "is_bot",
    "new_click_id",
    "redis_client",
    "stream_key",
    "target_resolve",
    "targets_forget",
    "visitor_from_cookie",
]
