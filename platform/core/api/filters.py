"""Query filters shared by the lists of every app."""

from __future__ import annotations

from datetime import UTC

import django_filters
from rest_framework.exceptions import ValidationError


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows; UTC is always accepted."""

    def filter(self, qs, value):
        if value is None:
            return qs
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValidationError({self.field_name: ["Out of range."]}, code="invalid") from None
        return super().filter(qs, value)
