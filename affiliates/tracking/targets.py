"""What a referral code (and a link slug) resolves to, cached in process for a few seconds.

The redirect is the hot path, and a three-table lookup costs more than everything else it does;
a change to a link, an affiliate's status or a program reaches the redirect within
TARGET_CACHE_SECONDS. Attribution reads the database, so a click recorded in that window for a
just-suspended affiliate never earns anything.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from django.db import connection


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


# One row of _TARGET_SQL: program id, affiliate id, the affiliate's user id, link id, the link's
# destination, the program's default destination, cookie days, usable, the link's sub ids (JSON
# text or already decoded, by the driver's settings), the program's allowed domains.
TargetRow = tuple[int, int, int, int, str, str, int, bool | None, dict[str, str] | str | None, list[str] | None]

_TARGET_SQL = (
    "SELECT p.id, a.id, a.user_id, l.id, l.destination_url, p.default_destination, "
    "p.cookie_window_days, p.is_active AND a.status = 'approved' AND l.is_active, l.sub_ids, "
    "p.allowed_domains "
    "FROM affiliates_affiliate a "
    "JOIN affiliates_program p ON p.id = a.program_id "
    "JOIN affiliates_link l ON l.affiliate_id = a.id AND l.slug = %s "
    "WHERE a.code = %s"
)

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
        cursor.execute(_TARGET_SQL, [slug.lower(), code.lower()])
        row = cursor.fetchone()
    return None if row is None else target_from_row(row)


def target_from_row(row: TargetRow) -> Target:
    """The link's destination, else the program's; sub ids decoded, empty ones as None."""
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
