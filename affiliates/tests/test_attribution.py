"""Attribution weights and money splits, asserted to the exact micro-weight and minor unit.

Pure tests (no database): run with ``pytest -p no:django --noconftest``.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

import pytest

from affiliates.attribution import (
    WEIGHT_PLACES,
    AttributionModel,
    Credit,
    Touchpoint,
    credit,
    round_half_up,
    split_minor,
)

T = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)  # the conversion
A, B, C = 1, 2, 3
D = Decimal


def tp(ref: str, affiliate_id: int, days_before: int = 0, *, seconds_before: int = 0) -> Touchpoint:
    return Touchpoint(ref=ref, affiliate_id=affiliate_id, at=T - timedelta(days=days_before, seconds=seconds_before))


def run(touchpoints: list[Touchpoint], model: AttributionModel | str, **kwargs) -> Credit:
    result = credit(touchpoints=touchpoints, model=model, converted_at=T, **kwargs)
    assert result is not None
    return result


def weights_of(result: Credit) -> list[Decimal]:
    return [w for _, w in result.touchpoint_weights]


# --- one click ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(AttributionModel))
def test_single_click_gets_everything_under_every_model(model):
    click = tp("c1", 7, 3)
    result = run([click], model)
    assert result.touchpoint_weights == [(click, D("1"))]
    assert result.affiliate_weights == {7: D("1")}
    assert split_minor(amount_minor=10000, weights=result.affiliate_weights) == {7: 10000}


def test_no_touchpoints_gives_none():
    assert credit(touchpoints=[], model=AttributionModel.LINEAR, converted_at=T) is None


def test_model_may_be_given_as_string_and_unknown_model_is_rejected():
    assert run([tp("c1", A)], "linear").affiliate_weights == {A: D("1")}
    with pytest.raises(ValueError):
        credit(touchpoints=[tp("c1", A)], model="u_shaped", converted_at=T)


@pytest.mark.parametrize("bad", [0, -1, D("0")])
def test_half_life_must_be_positive(bad):
    with pytest.raises(ValueError):
        credit(touchpoints=[tp("c1", A)], model="time_decay", converted_at=T, half_life_days=bad)


def test_half_life_rejects_floats():
    with pytest.raises(TypeError):
        credit(touchpoints=[tp("c1", A)], model="time_decay", converted_at=T, half_life_days=7.0)


def test_touchpoints_sorted_chronologically_ties_by_ref():
    late, tie_b, tie_a = tp("z", A, 1), tp("b", B, 2), tp("a", C, 2)
    result = run([late, tie_b, tie_a], AttributionModel.FIRST_CLICK)
    assert [t for t, _ in result.touchpoint_weights] == [tie_a, tie_b, late]
    assert result.affiliate_weights == {A: D("0"), B: D("0"), C: D("1")}


# --- three clicks, two affiliates: A at t-3d, B at t-2d, A at t-1d; split of 99.99 -------------

THREE = [tp("c1", A, 3), tp("c2", B, 2), tp("c3", A, 1)]


def test_three_clicks_first_click():
    result = run(list(reversed(THREE)), AttributionModel.FIRST_CLICK)  # input order is irrelevant
    assert weights_of(result) == [D("1"), D("0"), D("0")]
    # B touched the journey, so it is listed, with nothing.
    assert result.affiliate_weights == {A: D("1"), B: D("0")}
    assert split_minor(amount_minor=9999, weights=result.affiliate_weights) == {A: 9999, B: 0}


def test_three_clicks_last_click():
    result = run(THREE, AttributionModel.LAST_CLICK)
    assert weights_of(result) == [D("0"), D("0"), D("1")]
    assert result.affiliate_weights == {A: D("1"), B: D("0")}
    assert split_minor(amount_minor=9999, weights=result.affiliate_weights) == {A: 9999, B: 0}


def test_three_clicks_linear():
    result = run(THREE, AttributionModel.LINEAR)
    # 1/3 -> 0.333333 each, sum 0.999999; residue +0.000001 to the largest (all tie) -> the latest, c3.
    assert weights_of(result) == [D("0.333333"), D("0.333333"), D("0.333334")]
    assert result.affiliate_weights == {A: D("0.666667"), B: D("0.333333")}
    # A: 9999 * 0.666667 = 6666.003333 -> 6666; B: 9999 * 0.333333 = 3332.996667 -> 3333; sum 9999.
    assert split_minor(amount_minor=9999, weights=result.affiliate_weights) == {A: 6666, B: 3333}


def test_three_clicks_position_based():
    result = run(THREE, AttributionModel.POSITION_BASED)
    assert weights_of(result) == [D("0.4"), D("0.2"), D("0.4")]
    assert result.affiliate_weights == {A: D("0.8"), B: D("0.2")}
    # A: 9999 * 0.8 = 7999.2 -> 7999; B: 9999 * 0.2 = 1999.8 -> 2000; sum 9999.
    assert split_minor(amount_minor=9999, weights=result.affiliate_weights) == {A: 7999, B: 2000}


def test_three_clicks_time_decay_half_life_7_days():
    result = run(THREE, AttributionModel.TIME_DECAY, half_life_days=7)

    # Independent computation: 2^(-d/7) = exp(-d*ln2/7), at higher precision than the module.
    with localcontext(Context(prec=40)):
        raw = [(-D(2).ln() * d / 7).exp() for d in (3, 2, 1)]
        exact = [r / sum(raw) for r in raw]
    quantized = [w.quantize(WEIGHT_PLACES, rounding=ROUND_HALF_UP) for w in exact]
    residue = 1 - sum(quantized)
    quantized[2] += residue  # c3 (1 day old) has the largest weight
    assert weights_of(result) == quantized

    # By hand: raw 0.742997, 0.820335, 0.905724 (sum 2.469056) -> 0.3009235, 0.3322465, 0.3668299
    # -> quantized 0.300924 + 0.332247 + 0.366830 = 1.000001; residue -0.000001 to c3 -> 0.366829.
    assert weights_of(result) == [D("0.300924"), D("0.332247"), D("0.366829")]
    assert result.affiliate_weights == {A: D("0.667753"), B: D("0.332247")}
    # A: 9999 * 0.667753 = 6676.862247 -> 6677; B: 9999 * 0.332247 = 3322.137753 -> 3322; sum 9999.
    assert split_minor(amount_minor=9999, weights=result.affiliate_weights) == {A: 6677, B: 3322}


# --- time decay at whole half-lives ------------------------------------------------------------


def test_time_decay_at_whole_half_lives():
    clicks = [tp("old", C, 14), tp("mid", B, 7), tp("new", A, 0)]
    result = run(clicks, AttributionModel.TIME_DECAY, half_life_days=D("7"))
    # raw 1/4, 1/2, 1 (sum 7/4) -> 1/7, 2/7, 4/7 -> 0.142857 + 0.285714 + 0.571429 = 1 exactly,
    # so the residue for the largest (new) is zero.
    assert weights_of(result) == [D("0.142857"), D("0.285714"), D("0.571429")]
    assert result.affiliate_weights == {A: D("0.571429"), B: D("0.285714"), C: D("0.142857")}
    # 7000 * 0.571429 = 4000.003 -> 4000; * 0.285714 = 1999.998 -> 2000; * 0.142857 = 999.999 -> 1000.
    assert split_minor(amount_minor=7000, weights=result.affiliate_weights) == {A: 4000, B: 2000, C: 1000}


def test_time_decay_uses_sub_day_precision():
    # Half a half-life apart: raw 1 and 2^(-1/2) = 0.70710678..; 1/1.70710678 = 0.5857864 and
    # 0.70710678/1.70710678 = 0.4142136.
    result = run([tp("a", A, 0, seconds_before=3 * 86400 + 43200), tp("b", B, 0)], "time_decay")
    assert result.affiliate_weights == {A: D("0.414214"), B: D("0.585786")}


# --- position based with 4 and 5 touchpoints ---------------------------------------------------


def test_position_based_four_touchpoints():
    clicks = [tp("c1", 10, 4), tp("c2", 20, 3), tp("c3", 30, 2), tp("c4", 10, 1)]
    result = run(clicks, AttributionModel.POSITION_BASED)
    assert weights_of(result) == [D("0.4"), D("0.1"), D("0.1"), D("0.4")]
    assert result.affiliate_weights == {10: D("0.8"), 20: D("0.1"), 30: D("0.1")}
    assert split_minor(amount_minor=10000, weights=result.affiliate_weights) == {10: 8000, 20: 1000, 30: 1000}
    # 123.45: 9876.0 -> 9876, 1234.5 -> 1235, 1234.5 -> 1235; sum 12346, residue -1 taken from the
    # largest share (10).
    assert split_minor(amount_minor=12345, weights=result.affiliate_weights) == {10: 9875, 20: 1235, 30: 1235}


def test_position_based_five_touchpoints():
    clicks = [tp("c1", 1, 5), tp("c2", 2, 4), tp("c3", 3, 3), tp("c4", 2, 2), tp("c5", 4, 1)]
    result = run(clicks, AttributionModel.POSITION_BASED)
    # middle 0.2/3 = 0.0666.. -> 0.066667 x3; sum 1.000001; residue -0.000001 to the largest,
    # 0.4 twice, tie -> the latest (c5) -> 0.399999.
    assert weights_of(result) == [D("0.4"), D("0.066667"), D("0.066667"), D("0.066667"), D("0.399999")]
    assert result.affiliate_weights == {1: D("0.4"), 2: D("0.133334"), 3: D("0.066667"), 4: D("0.399999")}
    # 4000; 1333.34 -> 1333; 666.67 -> 667; 3999.99 -> 4000; sum 10000, no residue.
    assert split_minor(amount_minor=10000, weights=result.affiliate_weights) == {1: 4000, 2: 1333, 3: 667, 4: 4000}


def test_position_based_two_touchpoints_half_each():
    result = run([tp("c1", A, 2), tp("c2", B, 1)], AttributionModel.POSITION_BASED)
    assert result.affiliate_weights == {A: D("0.5"), B: D("0.5")}


# --- linear, three affiliates, 100.00 ----------------------------------------------------------


def test_linear_three_affiliates_on_100():
    result = run([tp("c1", A, 3), tp("c2", B, 2), tp("c3", C, 1)], AttributionModel.LINEAR)
    # Weight residue goes to the latest click (C) ...
    assert result.affiliate_weights == {A: D("0.333333"), B: D("0.333333"), C: D("0.333334")}
    # ... but money residue to the largest share, ties to the lowest id: 3333.33 / 3333.33 / 3333.34
    # all round to 3333, sum 9999, residue +1 -> A.
    assert split_minor(amount_minor=10000, weights=result.affiliate_weights) == {A: 3334, B: 3333, C: 3333}


# --- split edge cases --------------------------------------------------------------------------

THIRDS = {A: D("0.333333"), B: D("0.333333"), C: D("0.333334")}


def test_split_zero_amount():
    assert split_minor(amount_minor=0, weights=THIRDS) == {A: 0, B: 0, C: 0}


def test_split_one_minor_unit_over_three_equal_weights():
    # 0.333333 -> 0 each; residue +1 to the largest share (all 0) -> the lowest id.
    assert split_minor(amount_minor=1, weights=THIRDS) == {A: 1, B: 0, C: 0}
    # 0.5 -> 1 each, sum 2, residue -1 taken from the largest share (tie: lowest id, B).
    assert split_minor(amount_minor=1, weights={C: D("0.5"), B: D("0.5")}) == {B: 0, C: 1}


def test_split_negative_residue_over_several_units_never_goes_negative():
    # 2 * 0.25 = 0.5 -> 1 each, sum 4, residue -2: one unit off the largest (tie: lowest id, A), then
    # off the new largest (B); taking both from A would leave it at -1.
    quarters = {A: D("0.25"), B: D("0.25"), C: D("0.25"), 4: D("0.25")}
    assert split_minor(amount_minor=2, weights=quarters) == {A: 0, B: 0, C: 1, 4: 1}


def test_split_returns_affiliate_id_order():
    assert list(split_minor(amount_minor=10, weights={9: D("0.5"), 2: D("0.5")})) == [2, 9]


@pytest.mark.parametrize(
    "weights",
    [{A: D("0.5"), B: D("0.4")}, {A: D("0.6"), B: D("0.5")}, {}, {A: D("1.2"), B: D("-0.2")}],
)
def test_split_rejects_weights_not_summing_to_one_or_negative(weights):
    with pytest.raises(ValueError):
        split_minor(amount_minor=100, weights=weights)


def test_split_rejects_negative_amount():
    with pytest.raises(ValueError):
        split_minor(amount_minor=-1, weights={A: D("1")})


def test_split_rejects_floats():
    with pytest.raises(TypeError):
        split_minor(amount_minor=100, weights={A: 0.5, B: 0.5})
    with pytest.raises(TypeError):
        split_minor(amount_minor=100.0, weights={A: D("1")})


def test_round_half_up():
    assert round_half_up(D("2.5")) == D("3")
    assert round_half_up(D("3.5")) == D("4")  # not banker's rounding
    assert round_half_up(D("-2.5")) == D("-3")  # half away from zero
    assert round_half_up(D("1.005"), places=2) == D("1.01")
    assert round_half_up(D("1.0049999"), places=2) == D("1.00")
    assert str(round_half_up(D("7"), places=2)) == "7.00"


# --- property style ----------------------------------------------------------------------------


def test_weights_and_shares_always_add_up():
    rng = random.Random(42)
    models = list(AttributionModel)
    for case in range(400):
        n = rng.randint(1, 9)
        clicks = [tp(f"r{case}-{i}", rng.randint(1, 5), 0, seconds_before=rng.randint(0, 60 * 86400)) for i in range(n)]
        model = models[case % len(models)]
        half_life = rng.choice([1, 7, 30, D("0.5"), D("3.25")])
        result = credit(touchpoints=clicks, model=model, converted_at=T, half_life_days=half_life)
        assert result is not None

        weights = weights_of(result)
        assert sum(weights) == 1, (case, model, weights)
        assert all(w >= 0 and w == w.quantize(WEIGHT_PLACES) for w in weights)
        assert [t.at for t, _ in result.touchpoint_weights] == sorted(c.at for c in clicks)
        assert sum(result.affiliate_weights.values()) == 1
        assert set(result.affiliate_weights) == {c.affiliate_id for c in clicks}

        amount = rng.choice([0, 1, 2, 3, 99, 9999, rng.randint(0, 10**9)])
        shares = split_minor(amount_minor=amount, weights=result.affiliate_weights)
        assert sum(shares.values()) == amount, (case, amount, result.affiliate_weights, shares)
        assert all(s >= 0 for s in shares.values())
        assert list(shares) == sorted(result.affiliate_weights)
