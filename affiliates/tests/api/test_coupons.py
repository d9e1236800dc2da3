"""Coupons through the API: a code handed out keeps meaning the same affiliate."""

from __future__ import annotations

import pytest

from affiliates.models import Coupon

pytestmark = pytest.mark.django_db


def test_a_coupon_change_touches_only_its_active_flag(world):
    staff = world.clients["staff"]
    made = staff.post("/api/v1/coupons", {"affiliate": world.aff.id, "code": "SAVE5"}, content_type="application/json")
    assert made.status_code == 201, made.content

    changed = staff.patch(
        f"/api/v1/coupons/{made.json()['id']}",
        {"is_active": False, "code": "OTHER", "affiliate": world.other.id},
        content_type="application/json",
    )

    assert changed.status_code == 200, changed.content
    coupon = Coupon.objects.get(pk=made.json()["id"])
    assert (coupon.code, coupon.affiliate_id, coupon.is_active) == ("SAVE5", world.aff.id, False)
