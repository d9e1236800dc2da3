"""affiliates.codes: generated and chosen referral codes, coupons."""

from __future__ import annotations

import random

import pytest

from affiliates.codes import (
    ALPHABET,
    GENERATED_LENGTH,
    MAX_LENGTH,
    RESERVED_CODES,
    CodeError,
    code_generate,
    code_normalize,
    coupon_normalize,
)


def test_alphabet_has_no_ambiguous_characters() -> None:
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert not set(ALPHABET) & set("01ilo")
    assert ALPHABET.lower() == ALPHABET


def test_generated_codes_use_the_alphabet_and_length() -> None:
    for _ in range(200):
        code = code_generate()
        assert len(code) == GENERATED_LENGTH
        assert set(code) <= set(ALPHABET)


def test_generated_length_can_be_chosen() -> None:
    assert len(code_generate(length=12)) == 12


@pytest.mark.parametrize("length", [0, 2, MAX_LENGTH + 1])
def test_generated_length_must_be_valid(length: int) -> None:
    with pytest.raises(ValueError):
        code_generate(length=length)


def test_generation_is_reproducible_with_an_rng() -> None:
    assert code_generate(rng=random.Random(7)) == code_generate(rng=random.Random(7))


def test_ten_thousand_generated_codes_are_all_valid() -> None:
    rng = random.Random(1)
    codes = [code_generate(rng=rng) for _ in range(10_000)]
    for code in codes:
        assert code_normalize(code) == code
    assert len(set(codes)) > 9_990  # 31**7 possibilities: collisions are rare


def test_generation_skips_reserved_words() -> None:
    class Scripted(random.Random):
        """Draws "www" first, then "abc"."""

        def __init__(self) -> None:
            super().__init__()
            self.letters = iter("wwwabc")

        def choice(self, seq):  # type: ignore[override]
            return next(self.letters)

    assert code_generate(length=3, rng=Scripted()) == "abc"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" Jane-Doe ", "jane-doe"),
        ("JANE_DOE", "jane_doe"),
        ("abc", "abc"),
        ("a-b", "a-b"),
        ("jane-doe-2024", "jane-doe-2024"),
        ("a_b-c", "a_b-c"),
        ("\tjane\n", "jane"),
        ("007", "007"),
        ("x" * MAX_LENGTH, "x" * MAX_LENGTH),
    ],
)
def test_code_normalize_accepts(value: str, expected: str) -> None:
    assert code_normalize(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "code_too_short"),
        ("   ", "code_too_short"),
        ("ab", "code_too_short"),
        ("x" * (MAX_LENGTH + 1), "code_too_long"),
        ("jane doe", "code_invalid_characters"),
        ("jane.doe", "code_invalid_characters"),
        ("jane/doe", "code_invalid_characters"),
        ("jane+doe", "code_invalid_characters"),
        ("jane%20", "code_invalid_characters"),
        ("jäne", "code_invalid_characters"),
        ("\uff4a\uff41\uff4e\uff45", "code_invalid_characters"),  # full-width "jane"
        ("j\u0430ne", "code_invalid_characters"),  # Cyrillic U+0430 "a"
        ("\u212ajane", "code_invalid_characters"),  # KELVIN SIGN, which lowercases to ASCII "k"
        ("jane\u200b", "code_invalid_characters"),  # zero-width space
        ("-jane", "code_invalid_format"),
        ("jane-", "code_invalid_format"),
        ("_jane", "code_invalid_format"),
        ("jane_", "code_invalid_format"),
        ("jane--doe", "code_invalid_format"),
        ("jane__doe", "code_invalid_format"),
        ("jane-_doe", "code_invalid_format"),
        ("---", "code_invalid_format"),
        ("admin", "code_reserved"),
        (" Admin ", "code_reserved"),
        ("API", "code_reserved"),
        ("www", "code_reserved"),
        ("static", "code_reserved"),
        ("login", "code_reserved"),
        ("signup", "code_reserved"),
        ("null", "code_reserved"),
        ("undefined", "code_reserved"),
    ],
)
def test_code_normalize_refuses(value: str, code: str) -> None:
    with pytest.raises(CodeError) as exc:
        code_normalize(value)
    assert exc.value.code == code
    assert isinstance(exc.value, ValueError)
    assert str(exc.value) == exc.value.message


def test_reserved_words() -> None:
    # "r" and "t" are too short to choose anyway, but stay reserved in case the minimum changes.
    assert {"admin", "api", "r", "t", "static", "www", "login", "signup", "null", "undefined"} == RESERVED_CODES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" save-10 ", "SAVE-10"),
        ("summer_sale", "SUMMER_SALE"),
        ("X1", "X1"),
        ("a" * 40, "A" * 40),
        ("JANE2024", "JANE2024"),
    ],
)
def test_coupon_normalize_accepts(value: str, expected: str) -> None:
    assert coupon_normalize(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "  ",
        "x",
        "a" * 41,
        "save 10",
        "save.10",
        "10%off",
        "straße",
        "ß1",  # "ß".upper() is "SS": ASCII only after case mapping
        "\uff33\uff21\uff36\uff25",  # full-width "SAVE"
        "sävé",
        "save\u200b10",  # zero-width space
    ],
)
def test_coupon_normalize_refuses(value: str) -> None:
    with pytest.raises(CodeError) as exc:
        coupon_normalize(value)
    assert exc.value.code == "coupon_invalid"
