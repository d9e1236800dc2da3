"""A code (and slug) resolved to its redirect target: the row's reading, and the process cache."""

from __future__ import annotations

import pytest

from affiliates.models import Affiliate
from affiliates.tests import factories
from affiliates.tracking.targets import Target, TargetRow, target_from_row, target_resolve, targets_forget


def _row(
    *,
    link_dest: str = "https://shop.example.com/spring",
    program_dest: str = "https://shop.example.com/",
    usable: bool | None = True,
    sub_ids: dict[str, str] | str | None = None,
    domains: list[str] | None = None,
) -> TargetRow:
    return (1, 2, 3, 4, link_dest, program_dest, 30, usable, sub_ids, domains)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"destination": "https://shop.example.com/spring", "usable": True, "sub_ids": None}),
        ({"link_dest": ""}, {"destination": "https://shop.example.com/"}),
        ({"link_dest": "", "program_dest": ""}, {"destination": ""}),
        ({"usable": None}, {"usable": False}),  # a NULL in the AND: not usable
        ({"usable": False}, {"usable": False}),
        ({"sub_ids": '{"sub1":"a"}'}, {"sub_ids": {"sub1": "a"}}),  # JSON text, as some drivers give it
        ({"sub_ids": {"sub1": "a"}}, {"sub_ids": {"sub1": "a"}}),
        ({"sub_ids": {}}, {"sub_ids": None}),
        ({"sub_ids": "{}"}, {"sub_ids": None}),
        (
            {"domains": ["shop.example.com", "*.example.org"]},
            {"allowed_domains": ("shop.example.com", "*.example.org")},
        ),
        ({"domains": None}, {"allowed_domains": ()}),
    ],
)
def test_a_row_becomes_a_target(changes, expected):
    target = target_from_row(_row(**changes))

    assert {name: getattr(target, name) for name in expected} == expected


def test_a_row_keeps_its_ids_and_cookie_days():
    assert target_from_row(_row()) == Target(
        program_id=1,
        affiliate_id=2,
        affiliate_user_id=3,
        link_id=4,
        destination="https://shop.example.com/spring",
        cookie_days=30,
        usable=True,
    )


def test_codes_resolve_case_insensitively_and_unknown_ones_to_none(program):
    aff = factories.affiliate(program)

    target = target_resolve(code=aff.code.upper())

    assert target is not None
    assert (target.affiliate_id, target.program_id, target.usable) == (aff.id, program.id, True)
    assert target_resolve(code="nosuchcode") is None
    assert target_resolve(code=aff.code, slug="nosuchlink") is None


def test_a_resolved_target_is_cached_until_forgotten(program):
    aff = factories.affiliate(program)
    assert target_resolve(code=aff.code).usable is True
    Affiliate.objects.filter(pk=aff.pk).update(status=Affiliate.Status.SUSPENDED)

    cached = target_resolve(code=aff.code)
    targets_forget()
    fresh = target_resolve(code=aff.code)

    assert cached.usable is True
    assert fresh.usable is False
