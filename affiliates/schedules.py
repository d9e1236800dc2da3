"""When a program pays out on its own: its payout schedule, checked and read as dates.

A schedule is `manual` (staff start every run), `weekly` on a weekday (0 Monday .. 6 Sunday) or
`monthly` on a day of the month: 1 to 28, or 31 for the last day of every month (29 and 30 do not
exist in every month, so they are refused rather than silently moved). Days are UTC dates:
tenants have no time zone of their own yet.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date
from typing import Any

MANUAL, WEEKLY, MONTHLY = "manual", "weekly", "monthly"
LAST_DAY = 31
DAYS = "1 to 28, or 31 for the last day of the month"


FIELDS = ("payout_schedule", "payout_weekday", "payout_day_of_month")


def schedule_merge(*, current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The schedule's three fields after `changes` (some of them) are applied to `current`. A
    change of schedule clears the weekday or day it no longer uses, unless the change sets it:
    switching from weekly to monthly needs only the schedule and the day."""
    merged = {name: changes.get(name, current.get(name)) for name in FIELDS}
    if "payout_schedule" in changes:
        if merged["payout_schedule"] != WEEKLY and "payout_weekday" not in changes:
            merged["payout_weekday"] = None
        if merged["payout_schedule"] != MONTHLY and "payout_day_of_month" not in changes:
            merged["payout_day_of_month"] = None
    return merged


def schedule_errors(*, schedule: str, weekday: int | None, day_of_month: int | None) -> dict[str, str]:
    """What is wrong with a combination, by field name (empty when it is valid)."""
    found: dict[str, str] = {}
    if schedule == WEEKLY:
        if weekday is None:
            found["payout_weekday"] = "A weekly schedule needs a weekday (0 Monday to 6 Sunday)."
        elif not 0 <= weekday <= 6:
            found["payout_weekday"] = "A weekday is 0 (Monday) to 6 (Sunday)."
    elif weekday is not None:
        found["payout_weekday"] = "Only a weekly schedule has a weekday."
    if schedule == MONTHLY:
        if day_of_month is None:
            found["payout_day_of_month"] = f"A monthly schedule needs a day of the month ({DAYS})."
        elif not (1 <= day_of_month <= 28 or day_of_month == LAST_DAY):
            found["payout_day_of_month"] = f"The day of the month is {DAYS}."
    elif day_of_month is not None:
        found["payout_day_of_month"] = "Only a monthly schedule has a day of the month."
    if schedule not in (MANUAL, WEEKLY, MONTHLY):
        found["payout_schedule"] = "The schedule is manual, weekly or monthly."
    return found


def is_due(*, schedule: str, weekday: int | None, day_of_month: int | None, on: date) -> bool:
    """Whether a run is due on the date `on`."""
    if schedule == WEEKLY:
        return on.weekday() == weekday
    if schedule == MONTHLY:
        if day_of_month == LAST_DAY:
            return on.day == calendar.monthrange(on.year, on.month)[1]
        return on.day == day_of_month
    return False
