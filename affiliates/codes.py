"""Referral codes (the "jane-doe" in /r/jane-doe) and coupon codes.

Referral codes live in URLs and are matched case-insensitively, so they are stored lowercase.
Coupons are typed at checkout and printed on flyers, so they are stored upper-case. Both are
plain ASCII: a non-ASCII letter can look like an ASCII one (full-width or Cyrillic letters), and
case mapping can even turn one into ASCII ("K" KELVIN SIGN lowercases to "k", "ß" uppercases
to "SS"), so we check for ASCII before changing case.
"""

from __future__ import annotations

import random
import re
import secrets

# No 0/o, 1/l/i: unambiguous when read aloud or handwritten; lowercase and URL-safe.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
GENERATED_LENGTH = 7  # 31**7 ≈ 2.75e10 codes: guessing a live one is impractical
MIN_LENGTH = 3
MAX_LENGTH = 32
# Words that would be confusing or collide with our own URL paths ("/r/", "/t/", "/api/").
RESERVED_CODES = frozenset({"admin", "api", "r", "t", "static", "www", "login", "signup", "null", "undefined"})

COUPON_MIN_LENGTH = 2
COUPON_MAX_LENGTH = 40

_CODE_CHARS_RE = re.compile(r"[a-z0-9_-]*")
# Separators only between alphanumerics: no "-jane", "jane_", "jane--doe" or "jane-_doe",
# which are easy to mistype and look like another affiliate's code.
_CODE_FORMAT_RE = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_COUPON_RE = re.compile(r"[A-Z0-9_-]+")


class CodeError(ValueError):
    """A refused code; `code` is stable for API clients, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def code_generate(*, length: int = GENERATED_LENGTH, rng: random.Random | None = None) -> str:
    """A random referral code from ALPHABET; `rng` makes it reproducible in tests.

    The result always passes `code_normalize` (a reserved word is drawn again), so it can be
    stored without a second check. Uniqueness is the caller's job (retry on conflict).
    """
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between {MIN_LENGTH} and {MAX_LENGTH}")
    choice = rng.choice if rng is not None else secrets.choice
    while True:
        code = "".join(choice(ALPHABET) for _ in range(length))
        if code not in RESERVED_CODES:
            return code


def code_normalize(value: str) -> str:
    """Check a code an affiliate chose and return it stripped and lowercase (" Jane-Doe " -> "jane-doe")."""
    value = value.strip()
    if not value.isascii():
        raise CodeError("code_invalid_characters", 'Use only letters a-z, digits, "-" and "_".')
    value = value.lower()
    if not _CODE_CHARS_RE.fullmatch(value):
        raise CodeError("code_invalid_characters", 'Use only letters a-z, digits, "-" and "_".')
    if len(value) < MIN_LENGTH:
        raise CodeError("code_too_short", f"Use at least {MIN_LENGTH} characters.")
    if len(value) > MAX_LENGTH:
        raise CodeError("code_too_long", f"Use at most {MAX_LENGTH} characters.")
    if not _CODE_FORMAT_RE.fullmatch(value):
        raise CodeError("code_invalid_format", 'Start and end with a letter or digit, and don\'t repeat "-" or "_".')
    if value in RESERVED_CODES:
        raise CodeError("code_reserved", f'"{value}" is reserved; choose another code.')
    return value


def coupon_normalize(value: str) -> str:
    """Check a coupon code and return it stripped and upper-case (" save-10 " -> "SAVE-10")."""
    value = value.strip()
    # ASCII before upper(): "ß".upper() is "SS" (see the module docstring).
    if value.isascii():
        value = value.upper()
        if COUPON_MIN_LENGTH <= len(value) <= COUPON_MAX_LENGTH and _COUPON_RE.fullmatch(value):
            return value
    raise CodeError(
        "coupon_invalid",
        f'Use {COUPON_MIN_LENGTH} to {COUPON_MAX_LENGTH} letters A-Z, digits, "-" or "_".',
    )
