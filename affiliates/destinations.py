"""Where a tracking link may send a visitor: no open redirects.

A merchant lists the domains its landing pages live on (`domain_normalize` checks each entry);
a link's destination is accepted only if its host is one of them (`destination_clean`).

The rule that keeps this safe: we never hand the browser the string we were given. We parse it
strictly, refuse anything a browser might read differently from us (backslashes, user-info,
whitespace, percent-escapes in the host, ...), and return a URL rebuilt from the parts we
checked, with an ASCII (punycode) host. Whatever the browser does with that URL, it goes to
the host we compared.

Host names go through UTS #46 / IDNA 2008 (the `idna` package), the mapping browsers use, so
"BÜCHER.de", "bücher.de" and "xn--bcher-kva.de" are all the same host to us as to them.
NB: `idna` is not a declared dependency of the project yet (it reaches the venv through
`requests`), so it belongs in `[project].dependencies`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

import idna

MAX_URL_LENGTH = 2048
# Bounds the IDNA work on hostile input; a real host is at most 253 ASCII characters.
_MAX_HOST_INPUT = 1024

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# WHATWG URL "ends in a number": browsers read such a host as an IPv4 address
# ("127.0.0.1", "2130706433", "0x7f.1"), so it can never be a domain.
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Invisible or layout characters: browsers silently drop tabs and newlines from URLs and
# IDNA drops soft hyphens, so "exa\tmple.com" would not be the string we looked at.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
# Characters a path, query or fragment may carry as they are (RFC 3986 reserved and
# unreserved, plus "%" so existing escapes are not escaped twice); `quote` escapes the rest,
# which makes the returned URL plain ASCII.
_REST_SAFE = "!#$%&'()*+,/:;=?@[]~"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationError(ValueError):
    """A refused domain entry or destination; `code` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _has_unsafe_chars(value: str) -> bool:
    # A backslash is a "/" to browsers in http(s) URLs, so "https://evil.com\@example.com"
    # goes to evil.com while a naive parser sees example.com. Legit URLs escape it as %5C.
    return any(ch == "\\" or ch.isspace() or unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in value)


def _host_to_ascii(host: str, code: str) -> str:
    """Lowercase punycode form of a host name without its trailing dot, or DestinationError(code)."""
    if not host or len(host) > _MAX_HOST_INPUT or _has_unsafe_chars(host):
        raise DestinationError(code, "Enter a valid domain name.")
    try:
        # uts46: map case and width the way browsers do; non-transitional: "ß" stays "ß".
        ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise DestinationError(code, "Enter a valid domain name.") from exc
    ascii_host = ascii_host.lower().removesuffix(".")  # "example.com." is example.com in DNS
    labels = ascii_host.split(".")
    # idna already checks most of this; checking again keeps the guarantee in one place.
    if len(ascii_host) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise DestinationError(code, "Enter a valid domain name.")
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        raise DestinationError(code, "IP addresses are not allowed; enter a domain name.")
    return ascii_host


def domain_normalize(value: str) -> str:
    """Check one allowed-domain entry and return its normal form.

    "Shop.Example.com" -> "shop.example.com", "bücher.de" -> "xn--bcher-kva.de",
    "*.example.com" (example.com and any subdomain) -> "*.example.com".
    Surrounding whitespace is dropped (a form-field habit); IP addresses are refused because
    destinations must be named hosts, and a wildcard needs at least two labels after it so
    "*.com" cannot allow the whole TLD.
    """
    value = value.strip()
    wildcard = value.startswith("*.")
    base = value[2:] if wildcard else value
    if "://" in base or base.lower().startswith(("http:", "https:")):
        raise DestinationError("domain_invalid", 'Enter just the domain name, without "https://".')
    if any(ch in base for ch in "/?#"):
        raise DestinationError("domain_invalid", "Enter just the domain name, without a path.")
    if any(ch in base for ch in ":[]"):
        raise DestinationError("domain_invalid", "Enter just the domain name, without a port; IPs are not allowed.")
    if "@" in base:
        raise DestinationError("domain_invalid", "Enter just the domain name, without a user name.")
    if any(ch in base for ch in "*%"):
        raise DestinationError("domain_invalid", 'Enter a domain name; "*." is allowed only at the start.')
    host = _host_to_ascii(base, "domain_invalid")
    if not wildcard:
        return host
    if "." not in host:
        raise DestinationError("domain_invalid", 'A wildcard needs a domain, as in "*.example.com".')
    return f"*.{host}"


def host_allowed(host: str, allowed_domains: Sequence[str]) -> bool:
    """`host` (lower-case ASCII) is one of the normalized entries, or under a `*.` one."""
    for entry in allowed_domains:
        if entry.startswith("*."):
            # The "." in the suffix is what stops "evilexample.com" matching "*.example.com".
            if host == entry[2:] or host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def destination_clean(url: str, *, allowed_domains: Sequence[str]) -> str:
    """Return the normalized URL if `url` is an absolute http(s) URL on an allowed host.

    `allowed_domains` holds `domain_normalize` output; an entry that is not normalized simply
    never matches (the check fails closed). Raises DestinationError with code
    "destination_invalid" (malformed or ambiguous) or "destination_not_allowed".
    """
    if isinstance(allowed_domains, str):  # a bare "example.com" would be iterated per letter
        raise TypeError("allowed_domains must be a sequence of domains, not a string")

    def invalid(message: str) -> DestinationError:
        return DestinationError("destination_invalid", message)

    if not url:
        raise invalid("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise invalid(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if _has_unsafe_chars(url):
        raise invalid("The URL contains spaces, control characters or backslashes.")

    # Parsed by hand rather than with urlsplit, which is lenient in ways browsers are not
    # (and vice versa): we accept only "scheme://authority[/path][?query][#fragment]".
    match = _SCHEME_RE.match(url)
    if match is None:
        raise invalid('Enter a full URL starting with "https://".')
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:  # javascript:, data:, vbscript:, file:, ftp:, ...
        raise invalid("Only http and https URLs are allowed.")
    rest = url[match.end() :]
    if not rest.startswith("//"):
        raise invalid('Enter a full URL starting with "https://".')
    rest = rest[2:]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]

    if not authority:  # "https:///evil.com": browsers would take evil.com as the host
        raise invalid("The URL has no host.")
    if "@" in authority:  # "https://example.com@evil.com" goes to evil.com
        raise invalid("URLs with a user name or password are not allowed.")
    if "%" in authority:  # "%2F", "%40", "%2E", even "%65": the browser decodes, we don't guess
        raise invalid("The host name may not contain percent-escapes.")
    if authority.startswith("["):
        raise invalid("IP addresses are not allowed; use a domain name.")
    host, sep, port_text = authority.partition(":")
    port: int | None = None
    if sep:
        if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
            raise invalid("The port must be a number.")
        port = int(port_text)
        if not 0 < port < 65536:
            raise invalid("The port must be between 1 and 65535.")
        if port == _DEFAULT_PORTS[scheme]:
            port = None
    ascii_host = _host_to_ascii(host, "destination_invalid")

    if not host_allowed(ascii_host, allowed_domains):
        raise DestinationError("destination_not_allowed", f"{ascii_host} is not one of the program's allowed domains.")

    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    cleaned = f"{scheme}://{netloc}{quote(tail, safe=_REST_SAFE)}"
    if len(cleaned) > MAX_URL_LENGTH:  # punycode and escaping can grow the URL
        raise invalid(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    return cleaned


def url_with_params(url: str, params: Mapping[str, str]) -> str:
    """Set query parameters on a clean URL (e.g. the click id), keeping the rest as it is.

    Existing parameters are kept byte for byte (merchants' own tracking values may use odd
    encodings) except those named in `params`, which are replaced; the fragment is kept.
    """
    if not params:
        return url
    parts = urlsplit(url)
    kept = [pair for pair in parts.query.split("&") if pair and unquote_plus(pair.partition("=")[0]) not in params]
    kept.append(urlencode(params, quote_via=quote))
    return urlunsplit(parts._replace(query="&".join(kept)))
