"""Serializer fields stricter than DRF's defaults: the schema's types are what the API takes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from core import money


class _StrictString(serializers.CharField):
    """Refuses numbers and booleans instead of quietly turning them into text (DRF's default):
    the schema promises a string, so a client sending 0 has a bug worth hearing about."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # DRF checks max_length after trimming whitespace (which for str.strip includes control
        # characters such as \x1d), so 300 characters could pass a field the schema caps at 255.
        # The limit is on what the client sent.
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class StrictCharField(_StrictString):
    pass


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictUUIDField(serializers.UUIDField):
    """DRF would read an integer (and so `false`) as UUID(int=...): only text is an id here."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class FieldsBuiltOnce(serializers.Serializer[Any]):
    """For serializers on hot paths: fields built and bound once per class. DRF otherwise deep-
    copies (a ModelSerializer: rebuilds from the model) every field for every instance, which on
    `POST /api/v1/conversions` cost more than validating the body or rendering the response.
    The fields stay bound to a blank instance, so only for serializers whose fields keep no
    state of their own: none reads the context (the request), and none is used with
    `partial=True` (a field asks its root whether the validation is partial)."""

    _fields_built: ClassVar[BindingDict | None] = None

    @property
    def fields(self) -> BindingDict:
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            # Bound to a blank instance of their own, not to this one: nothing of a request or
            # of the rendered rows stays referenced for the life of the process.
            blank = cls.__new__(cls)
            serializers.BaseSerializer.__init__(blank)
            built = super(FieldsBuiltOnce, blank).fields
            cls._fields_built = built
        return built


AMOUNT_HELP = 'A decimal string in the program\'s currency, e.g. "49.90".'


@extend_schema_field(OpenApiTypes.STR)
class MinorAmountField(serializers.Field[Any, Any, str, Any]):
    """Reads `<name>_minor` and the currency of the row (or of its program) and writes a
    decimal string; on input, parses a decimal string exactly (no float ever)."""

    def __init__(self, *, currency_from: str = "currency", **kwargs: Any) -> None:
        self.currency_from = currency_from
        kwargs.setdefault("help_text", AMOUNT_HELP)
        super().__init__(**kwargs)

    def get_attribute(self, instance: Any) -> Any:
        value = getattr(instance, str(self.source))
        currency = instance
        for part in self.currency_from.split("."):
            currency = getattr(currency, part)
        return None if value is None else (value, currency)

    def to_representation(self, value: tuple[int, str]) -> str:
        return money.format_minor(*value)

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str):
            raise serializers.ValidationError('Send amounts as decimal strings, e.g. "49.90".', code="invalid")
        try:
            value = Decimal(data.strip())
        except ArithmeticError:
            raise serializers.ValidationError("Not a decimal number.", code="invalid") from None
        if not value.is_finite() or abs(value) >= Decimal(10) ** 12:
            raise serializers.ValidationError("Not a plausible amount.", code="invalid")
        return value
