"""Multi-touch attribution: which affiliates get credit for a conversion, and how money is split.

Pure domain logic: no Django, no floats, only ``decimal.Decimal`` and integers.

Rounding rule (the platform's documented money-rounding rule): an amount is computed once from
exact inputs and rounded half-up to the currency's minor unit (``round_half_up``); when rounded
parts must add up to an exact whole, the residue (whole minus the sum of the rounded parts) is
settled on the largest part, one unit at a time, so the parts always add up exactly and none
goes negative. Money shares break ties between equal largest shares by the lowest affiliate id.
Attribution weights follow the same rule in units of ``WEIGHT_PLACES`` (ties: the latest click).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum

WEIGHT_PLACES = Decimal("0.000001")
_WEIGHT_DIGITS = -int(WEIGHT_PLACES.as_tuple().exponent)
# A fresh context rather than the caller's: results must not depend on whatever precision or
# rounding the surrounding code happened to set.
_PRECISION = 28
_SECONDS_PER_DAY = 86400


class AttributionModel(StrEnum):
    FIRST_CLICK = "first_click"
    LAST_CLICK = "last_click"
    LINEAR = "linear"
    TIME_DECAY = "time_decay"
    POSITION_BASED = "position_based"


@dataclass(frozen=True)
class Touchpoint:
    ref: str  # the click id (opaque)
    affiliate_id: int
    at: datetime  # aware datetime of the click


@dataclass(frozen=True)
class Credit:
    touchpoint_weights: list[tuple[Touchpoint, Decimal]]  # chronological, each quantized
    affiliate_weights: dict[int, Decimal]  # per affiliate (id order), sums to exactly 1


def round_half_up(value: Decimal, *, places: int = 0) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _settle(parts: list[int], *, total: int, rank: Callable[[int], int]) -> list[int]:
    """Moves ``total - sum(parts)`` onto the largest part (higher ``rank`` wins ties).

    One unit at a time: a positive residue still lands entirely on the largest part, but a
    negative residue of several units (e.g. 2 split over four quarters: 1+1+1+1) would otherwise
    drive that single part below zero."""
    parts = list(parts)
    residue = total - sum(parts)
    step = 1 if residue > 0 else -1
    for _ in range(abs(residue)):
        largest = max(range(len(parts)), key=lambda k: (parts[k], rank(k)))
        parts[largest] += step
    return parts


def _raw_weights(
    model: AttributionModel, ordered: list[Touchpoint], converted_at: datetime, half_life_seconds: Decimal
) -> list[Decimal]:
    n = len(ordered)
    zero, one = Decimal(0), Decimal(1)
    if model is AttributionModel.FIRST_CLICK:
        return [one] + [zero] * (n - 1)
    if model is AttributionModel.LAST_CLICK:
        return [zero] * (n - 1) + [one]
    if model is AttributionModel.LINEAR:
        return [one] * n
    if model is AttributionModel.TIME_DECAY:
        # Integer microseconds, because timedelta.total_seconds() would bring a float in. A click
        # after the conversion (negative age) is not clamped: filtering is the caller's job.
        ages = [Decimal((converted_at - tp.at) // timedelta(microseconds=1)).scaleb(-6) for tp in ordered]
        return [Decimal(2) ** -(age / half_life_seconds) for age in ages]
    if n <= 2:
        return [one] * n
    middle = Decimal("0.2") / (n - 2)
    return [Decimal("0.4")] + [middle] * (n - 2) + [Decimal("0.4")]


def credit(
    *,
    touchpoints: Sequence[Touchpoint],
    model: AttributionModel | str,
    converted_at: datetime,
    half_life_days: Decimal | int = 7,
) -> Credit | None:
    # Validate before the empty check so a misconfigured model or half-life fails on every call,
    # not only on conversions that happen to have clicks.
    model = AttributionModel(model)
    if isinstance(half_life_days, bool) or not isinstance(half_life_days, Decimal | int):
        raise TypeError("half_life_days must be a Decimal or an int")
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    if not touchpoints:
        return None
    ordered = sorted(touchpoints, key=lambda tp: (tp.at, tp.ref))
    with localcontext(Context(prec=_PRECISION)):
        raw = _raw_weights(model, ordered, converted_at, Decimal(half_life_days) * _SECONDS_PER_DAY)
        total = sum(raw)
        units = [int(round_half_up(w / total, places=_WEIGHT_DIGITS).scaleb(_WEIGHT_DIGITS)) for w in raw]
        units = _settle(units, total=10**_WEIGHT_DIGITS, rank=lambda k: k)
        weights = [Decimal(u).scaleb(-_WEIGHT_DIGITS) for u in units]
        per_affiliate: dict[int, Decimal] = {}
        for tp, weight in zip(ordered, weights, strict=True):
            per_affiliate[tp.affiliate_id] = per_affiliate.get(tp.affiliate_id, Decimal(0)) + weight
    return Credit(
        touchpoint_weights=list(zip(ordered, weights, strict=True)),
        affiliate_weights=dict(sorted(per_affiliate.items())),
    )


def split_minor(*, amount_minor: int, weights: Mapping[int, Decimal]) -> dict[int, int]:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int (minor units)")
    if amount_minor < 0:
        raise ValueError("amount_minor must not be negative")
    if not all(isinstance(w, Decimal) for w in weights.values()):
        raise TypeError("weights must be Decimals")
    ids = sorted(weights)
    with localcontext(Context(prec=_PRECISION)):
        if any(weights[i] < 0 for i in ids) or sum(weights.values(), Decimal(0)) != 1:
            raise ValueError("weights must be non-negative and sum to exactly 1")
        shares = [int(round_half_up(amount_minor * weights[i])) for i in ids]
    shares = _settle(shares, total=amount_minor, rank=lambda k: -ids[k])
    return dict(zip(ids, shares, strict=True))
