"""Builders for affiliate-program objects, going through the services so that tests exercise
the same code paths as the API. Call them inside a tenant's schema."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from typing import Any

import factory
from django.db import connection

from accounts.models import User
from affiliates import services, tracking
from affiliates.models import Affiliate, CommissionRule, Program

_seq = itertools.count(1)
PASSWORD = "affiliate pass phrase 42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"affiliate{n}@example.org")
    role = User.Role.AFFILIATE
    password = factory.django.Password(PASSWORD)


def program(**fields: Any) -> Program:
    n = next(_seq)
    fields.setdefault("allowed_domains", ["shop.example.com", "*.example.org"])
    fields.setdefault("default_destination", "https://shop.example.com/")
    return services.program_create(name=fields.pop("name", f"Program {n}"), slug=fields.pop("slug", f"p{n}"), **fields)


def affiliate(
    program: Program, *, approved: bool = True, parent: Affiliate | None = None, **user_fields: Any
) -> Affiliate:
    user = UserFactory(**user_fields)
    created = services.affiliate_apply(program=program, user=user, parent_code=parent.code if parent else None)
    if approved and created.status != Affiliate.Status.APPROVED:
        created.status = Affiliate.Status.APPROVED
        created.save(update_fields=["status"])
    return created


def rule(
    program: Program, *, percent: str | None = "10", affiliates: list[Affiliate] | None = None, **fields: Any
) -> CommissionRule:
    fields.setdefault("name", f"Rule {next(_seq)}")
    if fields.get("kind") == CommissionRule.Kind.FLAT:
        percent = None
    built = CommissionRule(program=program, percent=Decimal(percent) if percent is not None else None, **fields)
    return services.rule_save(rule=built, affiliates=affiliates)


def click(affiliate: Affiliate, *, visitor, at: datetime, **fields: Any):
    """A stored click at a given time (buffered, then drained as the tracker would)."""
    target = tracking.target_resolve(code=affiliate.code)
    assert target is not None
    result = tracking.click_record(
        target=target,
        visitor_id=visitor,
        ip=fields.pop("ip", f"10.0.{next(_seq) % 250}.1"),
        user_agent=fields.pop("user_agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"),
        at=at,
        **fields,
    )
    tracking.clicks_drain()
    # Tests place clicks at simulated times; the real-time dedupe must not merge them.
    tracking.redis_client().delete(tracking.dedupe_key(connection.schema_name, result.visitor_id, target.link_id))
    return result
