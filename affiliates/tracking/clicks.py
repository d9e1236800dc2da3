"""Recording a click: the hot path behind `/r/<code>` and the snippet's click endpoint.

A bot's click is answered but not recorded. Any other click is appended to the tenant's buffer
(`buffer`: dedupe, flood flags and the unique-visitor check, in one Redis round trip) and
reaches PostgreSQL with the next drain (`drain`). One synchronous commit per click is what
holds other click trackers to a few hundred clicks per second on a small machine; a stream
append costs one Redis round trip. If Redis cannot be reached, the click is inserted directly
instead (counted, but not deduplicated), and so are the process's clicks of the next
BUFFER_PAUSE_SECONDS, without trying Redis.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.db import connection

from affiliates.tracking.buffer import SCRIPT_LIMITS, buffer_append, click_keys
from affiliates.tracking.store import ClickRow, encode, row_insert_direct
from affiliates.tracking.targets import Target
from affiliates.tracking.visitors import ip_hash, is_bot

# The query parameter that carries the click id to the merchant's page.
CLICK_PARAM = "ac_click"


@dataclass(frozen=True)
class ClickResult:
    click_id: uuid.UUID
    visitor_id: uuid.UUID
    recorded: bool  # False: a repeat within the dedupe interval, or a bot
    flagged: str = ""


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


def referrer_source(referrer: str) -> str:
    """The referrer's host (the daily sources' key); empty when there is none or it is malformed."""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        host = ""
    return host[:255]


def click_row(
    *,
    click_id: uuid.UUID,
    visitor: uuid.UUID,
    target: Target,
    at: datetime,
    source: str,
    landing_url: str,
    referrer: str,
    user_agent: str,
    hashed_ip: str,
    sub_ids: dict[str, str] | None,
    utm: dict[str, str] | None,
    is_self: bool,
) -> ClickRow:
    """The row to store: texts cut to their columns, the click's sub ids over the link's own."""
    return {
        "id": str(click_id),
        "program_id": target.program_id,
        "affiliate_id": target.affiliate_id,
        "link_id": target.link_id,
        "visitor_id": str(visitor),
        "created_at": at.isoformat(),
        "source": source,
        "landing_url": landing_url[:2048],
        "referrer": referrer[:2048],
        "user_agent": user_agent[:512],
        "ip_hash": hashed_ip,
        "sub_ids": {**(target.sub_ids or {}), **(sub_ids or {})},
        "utm": utm or {},
        "is_self": is_self,
        "src": referrer_source(referrer) if referrer else "",
    }


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
    """Record one click into the buffer (into the database when the buffer is unavailable). A bot's
    click and a repeat within DEDUPE_SECONDS are answered but not recorded; a repeat answers the
    first click's id, so the merchant's page sees one id per visit."""
    visitor = visitor_id or uuid.uuid4()
    click_id = new_click_id()
    if is_bot(user_agent):
        return ClickResult(click_id=click_id, visitor_id=visitor, recorded=False)
    now = at or datetime.now(UTC)
    schema = connection.schema_name
    hashed_ip = ip_hash(ip, schema) if ip else ""
    row = click_row(
        click_id=click_id,
        visitor=visitor,
        target=target,
        at=now,
        source=source,
        landing_url=landing_url,
        referrer=referrer,
        user_agent=user_agent,
        hashed_ip=hashed_ip,
        sub_ids=sub_ids,
        utm=utm,
        is_self=is_self,
    )
    keys = click_keys(schema=schema, visitor=visitor, link_id=target.link_id, hashed_ip=hashed_ip, at=now)
    answer = buffer_append(keys, [str(click_id), *SCRIPT_LIMITS, str(visitor), encode(row)])
    if answer is None:
        row_insert_direct(row)
        return ClickResult(click_id=click_id, visitor_id=visitor, recorded=True)
    created, first_id, flagged = answer
    if not created:  # a repeat within DEDUPE_SECONDS: the first click's id
        return ClickResult(click_id=uuid.UUID(first_id.decode()), visitor_id=visitor, recorded=False)
    return ClickResult(click_id=click_id, visitor_id=visitor, recorded=True, flagged=flagged.decode())
