"""Commission rules through the API: what a change may and may not touch."""

from __future__ import annotations

import pytest

from affiliates.models import CommissionRule
from affiliates.tests import factories

pytestmark = pytest.mark.django_db


def test_a_rule_changes_its_fields_and_affiliates_but_never_its_program(world):
    rule = CommissionRule.objects.get(program=world.program)
    staff = world.clients["staff"]
    other_program = factories.program(slug="other")

    moved = staff.patch(
        f"/api/v1/commission-rules/{rule.id}", {"program": other_program.id}, content_type="application/json"
    )
    changed = staff.patch(
        f"/api/v1/commission-rules/{rule.id}",
        {"priority": 7, "affiliates": [world.aff.id]},
        content_type="application/json",
    )

    assert (moved.status_code, moved.json()["error"]["code"]) == (400, "program_locked")
    assert changed.status_code == 200, changed.content
    rule.refresh_from_db()
    assert (rule.program_id, rule.priority) == (world.program.id, 7)
    assert list(rule.affiliates.values_list("id", flat=True)) == [world.aff.id]
