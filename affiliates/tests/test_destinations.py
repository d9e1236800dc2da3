"""affiliates.destinations: allowed domains, open-redirect attacks, query parameters."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from affiliates.destinations import (
    MAX_URL_LENGTH,
    DestinationError,
    destination_clean,
    domain_normalize,
    url_with_params,
)

INVALID = "destination_invalid"
NOT_ALLOWED = "destination_not_allowed"

# --- domain_normalize ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com", "example.com"),
        ("Shop.Example.com", "shop.example.com"),
        ("  example.com  ", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("*.example.com", "*.example.com"),
        ("*.Bücher.DE", "*.xn--bcher-kva.de"),
        ("*.shop.example.com.", "*.shop.example.com"),
        ("localhost", "localhost"),
        ("a-b.example.com", "a-b.example.com"),
        ("123.example.com", "123.example.com"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_domain_normalize_accepts(value: str, expected: str) -> None:
    assert domain_normalize(value) == expected


def test_domain_normalize_total_length_limit() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    assert domain_normalize(longest) == longest
    with pytest.raises(DestinationError) as exc:
        domain_normalize(longest + "d")
    assert exc.value.code == "domain_invalid"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        ".",
        "https://example.com",
        "http://example.com",
        "//example.com",
        "example.com/path",
        "example.com?x=1",
        "example.com#x",
        "example.com:8080",
        "user@example.com",
        "user:pw@example.com",
        "exa mple.com",
        "exa\tmple.com",
        "example\n.com",
        "exa\u200bmple.com",  # zero-width space
        "a..example.com",
        ".example.com",
        "example.com..",
        "-a.example.com",
        "a-.example.com",
        "ab--c.example.com",
        "ex_ample.com",
        "ex%61mple.com",
        "exa\\mple.com",
        "a" * 64 + ".com",
        "☃.com",
        "xn--zz.de",  # not valid punycode
        # IP addresses are refused: destinations must be named hosts.
        "127.0.0.1",
        "10.0.0.1.",
        "2130706433",
        "0x7f.0.0.1",
        "[::1]",
        "::1",
        # Wildcards only as a leading "*." over a domain of two labels or more.
        "*",
        "*.",
        "*.com",
        "*example.com",
        "**.example.com",
        "foo.*.example.com",
        "example.*",
        "*.*.example.com",
    ],
)
def test_domain_normalize_refuses(value: str) -> None:
    with pytest.raises(DestinationError) as exc:
        domain_normalize(value)
    assert exc.value.code == "domain_invalid"
    assert exc.value.message == str(exc.value)


# --- destination_clean: attacks -----------------------------------------------------------

ATTACKS = [
    # not absolute / scheme-relative / backslash tricks (browsers read "\" as "/")
    ("", INVALID),
    ("/relative/path", INVALID),
    ("example.com/no-scheme", INVALID),
    ("//evil.com", INVALID),
    ("///evil.com", INVALID),
    ("https:///evil.com", INVALID),
    ("https:evil.com", INVALID),
    ("https:/evil.com", INVALID),
    ("https:/\\evil.com", INVALID),
    ("https:\\\\evil.com", INVALID),
    ("https://evil.com\\@example.com", INVALID),
    ("https://example.com\\.evil.com", INVALID),
    ("https://example.com/\\evil.com", INVALID),
    # user-info
    ("https://example.com@evil.com", INVALID),
    ("https://example.com:443@evil.com", INVALID),
    ("https://@example.com", INVALID),
    ("https://evil.com\uff20example.com", INVALID),  # full-width "@" maps to "@" under IDNA
    # the host is evil.com, whatever follows it
    ("https://evil.com#@example.com", NOT_ALLOWED),
    ("https://evil.com?.example.com", NOT_ALLOWED),
    ("https://evil.com/.example.com", NOT_ALLOWED),
    ("https://evil.com:443/example.com", NOT_ALLOWED),
    ("https://example.com.evil.com", NOT_ALLOWED),
    ("https://example.com\u3002evil.com", NOT_ALLOWED),  # ideographic full stop is a dot
    ("https://evilexample.com", NOT_ALLOWED),
    ("https://ex\u0430mple.com", NOT_ALLOWED),  # Cyrillic U+0430 "a": a different, valid IDN
    ("https://例え.jp", NOT_ALLOWED),
    ("https://com", NOT_ALLOWED),
    # other schemes, however they are spelled
    ("javascript:alert(1)", INVALID),
    ("JaVaScRiPt:alert(1)", INVALID),
    (" javascript:alert(1)", INVALID),
    ("java\tscript:alert(1)", INVALID),
    ("javascript://example.com/%0aalert(1)", INVALID),
    ("data:text/html,x", INVALID),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", INVALID),
    ("vbscript:msgbox(1)", INVALID),
    ("file:///etc/passwd", INVALID),
    ("ftp://example.com", INVALID),
    ("httpx://example.com", INVALID),
    # whitespace and control characters anywhere
    ("https://exa\nmple.com", INVALID),
    ("https://exa\rmple.com", INVALID),
    ("https://exa\tmple.com", INVALID),
    ("https://example.com ", INVALID),
    ("https://example.com/a b", INVALID),
    ("https://example.com/\r\nSet-Cookie: x=1", INVALID),
    ("https://example.com/\x00", INVALID),
    ("https://exa\u200bmple.com", INVALID),  # zero-width space
    ("https://exa\u00admple.com", INVALID),  # soft hyphen, which IDNA would drop
    ("https://example.com/\u2028", INVALID),
    ("https://example.com\u00a0", INVALID),
    # percent-encoded tricks in the host
    ("https://example.com%2F@evil.com", INVALID),
    ("https://example.com%2Fevil.com", INVALID),
    ("https://evil.com%40example.com", INVALID),
    ("https://example%2Ecom", INVALID),
    ("https://%65xample.com", INVALID),
    ("https://ex%61mple.com/", INVALID),
    # IP addresses, in all the spellings browsers accept
    ("http://[::1]/", INVALID),
    ("http://[::ffff:127.0.0.1]/", INVALID),
    ("http://127.0.0.1/", INVALID),
    ("http://2130706433/", INVALID),
    ("http://0x7f.1/", INVALID),
    # hosts IDNA refuses
    ("https://☃.com", INVALID),
    ("https://xn--zz.com", INVALID),
    ("https://ex_ample.com", INVALID),
    ("https://-example.com", INVALID),
    ("https://example..com", INVALID),
    ("https://*.example.com", INVALID),
    ("https://.example.com", INVALID),
    # ports
    ("https://example.com:/", INVALID),
    ("https://example.com:abc/", INVALID),
    ("https://example.com:0/", INVALID),
    ("https://example.com:65536/", INVALID),
    ("https://example.com:\uff11\uff12\uff13/", INVALID),  # full-width digits
    ("https://example.com:80:80/", INVALID),
    # length
    ("https://example.com/" + "a" * MAX_URL_LENGTH, INVALID),
]


@pytest.mark.parametrize("allowed", [["example.com"], ["*.example.com"]], ids=["exact", "wildcard"])
@pytest.mark.parametrize(("url", "code"), ATTACKS)
def test_destination_clean_refuses_attacks(url: str, code: str, allowed: list[str]) -> None:
    with pytest.raises(DestinationError) as exc:
        destination_clean(url, allowed_domains=allowed)
    assert exc.value.code == code


@pytest.mark.parametrize(
    "url",
    ["https://example.com", "https://shop.example.com/", "https://xn--bcher-kva.de/"],
)
def test_destination_clean_refuses_everything_when_nothing_is_allowed(url: str) -> None:
    with pytest.raises(DestinationError) as exc:
        destination_clean(url, allowed_domains=[])
    assert exc.value.code == NOT_ALLOWED


def test_exact_entry_does_not_allow_subdomains() -> None:
    with pytest.raises(DestinationError) as exc:
        destination_clean("https://shop.example.com/", allowed_domains=["example.com"])
    assert exc.value.code == NOT_ALLOWED


def test_allowed_domains_must_not_be_a_bare_string() -> None:
    with pytest.raises(TypeError):
        destination_clean("https://example.com/", allowed_domains="example.com")


def test_growth_past_the_limit_is_refused() -> None:
    # Short enough as typed, too long once the non-ASCII path is percent-encoded.
    url = "https://example.com/" + "ü" * 1000
    assert len(url) < MAX_URL_LENGTH
    with pytest.raises(DestinationError) as exc:
        destination_clean(url, allowed_domains=["example.com"])
    assert exc.value.code == INVALID


# --- destination_clean: accepted ----------------------------------------------------------

ACCEPTED = [
    ("https://example.com", ["example.com"], "https://example.com"),
    ("https://example.com/", ["example.com"], "https://example.com/"),
    ("http://example.com/", ["example.com"], "http://example.com/"),
    ("https://example.com/p?q=1#f", ["example.com"], "https://example.com/p?q=1#f"),
    ("https://example.com?q=1", ["example.com"], "https://example.com?q=1"),
    ("https://example.com#top", ["example.com"], "https://example.com#top"),
    ("HTTPS://EXAMPLE.COM/Path", ["example.com"], "https://example.com/Path"),
    ("https://example.com./", ["example.com"], "https://example.com/"),
    ("https://example.com", ["*.example.com"], "https://example.com"),
    ("https://shop.example.com:8443/x", ["*.example.com"], "https://shop.example.com:8443/x"),
    ("https://a.b.example.com/", ["*.example.com"], "https://a.b.example.com/"),
    ("https://shop.example.com/", ["other.org", "*.example.com"], "https://shop.example.com/"),
    ("https://example.com:443/", ["example.com"], "https://example.com/"),
    ("http://example.com:80/", ["example.com"], "http://example.com/"),
    ("http://example.com:443/", ["example.com"], "http://example.com:443/"),
    ("https://example.com:08443/", ["example.com"], "https://example.com:8443/"),
    ("https://bücher.de/kaufen", [domain_normalize("bücher.de")], "https://xn--bcher-kva.de/kaufen"),
    ("https://BÜCHER.de/", [domain_normalize("bücher.de")], "https://xn--bcher-kva.de/"),
    ("https://xn--bcher-kva.de/", [domain_normalize("bücher.de")], "https://xn--bcher-kva.de/"),
    ("https://shop.bücher.de/", [domain_normalize("*.bücher.de")], "https://shop.xn--bcher-kva.de/"),
    # full-width letters map to ASCII under IDNA, as in browsers; we return the ASCII form
    ("https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com/", ["example.com"], "https://example.com/"),
    # the path, query and fragment keep their escapes and get non-ASCII percent-encoded
    ("https://example.com/a%20b?c=%2F", ["example.com"], "https://example.com/a%20b?c=%2F"),
    ("https://example.com/ü?q=ö#ä", ["example.com"], "https://example.com/%C3%BC?q=%C3%B6#%C3%A4"),
    ('https://example.com/"<x>', ["example.com"], "https://example.com/%22%3Cx%3E"),
    ("https://example.com/p?next=https://evil.com", ["example.com"], "https://example.com/p?next=https://evil.com"),
    ("https://example.com/@evil.com", ["example.com"], "https://example.com/@evil.com"),
]


@pytest.mark.parametrize(("url", "allowed", "expected"), ACCEPTED)
def test_destination_clean_accepts(url: str, allowed: list[str], expected: str) -> None:
    cleaned = destination_clean(url, allowed_domains=allowed)
    assert cleaned == expected
    # What we return is plain ASCII, stable, and parses to the host we checked.
    assert cleaned.isascii()
    assert destination_clean(cleaned, allowed_domains=allowed) == cleaned
    host = urlsplit(cleaned).hostname
    assert host is not None
    assert any(host == d or (d.startswith("*.") and (host == d[2:] or host.endswith(d[1:]))) for d in allowed)


def test_error_carries_code_and_message() -> None:
    with pytest.raises(DestinationError) as exc:
        destination_clean("https://evil.com/", allowed_domains=["example.com"])
    assert isinstance(exc.value, ValueError)
    assert exc.value.code == NOT_ALLOWED
    assert "evil.com" in exc.value.message
    assert str(exc.value) == exc.value.message


# --- url_with_params ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        ("https://example.com/p", {"ac_click": "abc"}, "https://example.com/p?ac_click=abc"),
        ("https://example.com", {"ac_click": "abc"}, "https://example.com?ac_click=abc"),
        (
            "https://example.com/p?a=1&b=2#frag",
            {"ac_click": "abc"},
            "https://example.com/p?a=1&b=2&ac_click=abc#frag",
        ),
        (
            "https://example.com/?ac_click=old&a=1#f",
            {"ac_click": "new"},
            "https://example.com/?a=1&ac_click=new#f",
        ),
        (  # every copy is replaced, including an escaped name
            "https://example.com/?ac_click=1&a=1&ac%5Fclick=2",
            {"ac_click": "new"},
            "https://example.com/?a=1&ac_click=new",
        ),
        (  # other parameters are kept exactly as written
            "https://example.com/?utm=a%20b&x=1+2&flag&&y=",
            {"ac_click": "c"},
            "https://example.com/?utm=a%20b&x=1+2&flag&y=&ac_click=c",
        ),
        ("https://example.com/#f", {"ac_click": "a b&c"}, "https://example.com/?ac_click=a%20b%26c#f"),
        (
            "https://example.com/?a=1",
            {"ac_click": "x", "ac_aff": "jane"},
            "https://example.com/?a=1&ac_click=x&ac_aff=jane",
        ),
        ("https://example.com/?a=1#f", {}, "https://example.com/?a=1#f"),
    ],
)
def test_url_with_params(url: str, params: dict[str, str], expected: str) -> None:
    assert url_with_params(url, params) == expected


def test_url_with_params_on_a_cleaned_url() -> None:
    cleaned = destination_clean("https://Shop.Example.com:8443/p?ref=x#top", allowed_domains=["*.example.com"])
    assert url_with_params(cleaned, {"ac_click": "c1"}) == "https://shop.example.com:8443/p?ref=x&ac_click=c1#top"
