"""Query filters shared by the lists of every app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows; UTC is always accepted."""

    def filter(self, qs: QuerySet[Any], value: datetime | None) -> QuerySet[Any]:
        if value is None:
            return qs
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValidationError({self.field_name: ["Out of range."]}, code="invalid") from None
        filtered: QuerySet[Any] = super().filter(qs, value)
        return filtered
