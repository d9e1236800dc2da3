"""Subdomain rules. Each rule has its own code and message, checked in a fixed order so that
a person fixing one problem is told about the next."""

from __future__ import annotations

import re

from tenants.errors import TenantError

MIN_LENGTH = 3
MAX_LENGTH = 63  # one DNS label

RESERVED_SUBDOMAINS = frozenset(
    {
        "www",
        "api",
        "app",
        "apps",
        "admin",
        "administrator",
        "static",
        "media",
        "assets",
        "cdn",
        "mail",
        "email",
        "smtp",
        "imap",
        "pop",
        "pop3",
        "mx",
        "ns",
        "ns1",
        "ns2",
        "dns",
        "ftp",
        "help",
        "support",
        "status",
        "docs",
        "blog",
        "news",
        "public",
        "template",
        "tenant-template",
        "auth",
        "login",
        "logout",
        "signup",
        "register",
        "account",
        "accounts",
        "billing",
        "payments",
        "pay",
        "payouts",
        "stripe",
        "webhooks",
        "webhook",
        "dashboard",
        "console",
        "portal",
        "root",
        "system",
        "internal",
        "dev",
        "staging",
        "test",
        "demo-template",
        "localhost",
        "platform",
        "security",
        "abuse",
        "postmaster",
        "hostmaster",
        "webmaster",
        "info",
        "go",
        "r",
        "track",
    }
)

_ALLOWED = re.compile(r"^[a-z0-9-]+$")


def subdomain_clean(value: object) -> str:
    """Return the normalised subdomain or raise TenantError naming the first rule broken."""
    if not isinstance(value, str) or not value.strip():
        raise TenantError("subdomain_required", "Choose a subdomain.", field="subdomain")
    slug = value.strip().lower()
    if len(slug) < MIN_LENGTH:
        raise TenantError(
            "subdomain_too_short", f"The subdomain must be at least {MIN_LENGTH} characters long.", field="subdomain"
        )
    if len(slug) > MAX_LENGTH:
        raise TenantError(
            "subdomain_too_long", f"The subdomain must be at most {MAX_LENGTH} characters long.", field="subdomain"
        )
    if not _ALLOWED.match(slug):
        raise TenantError(
            "subdomain_invalid_characters",
            "Use only lowercase letters a-z, digits 0-9 and hyphens.",
            field="subdomain",
        )
    if slug.startswith("-") or slug.endswith("-"):
        raise TenantError(
            "subdomain_hyphen_at_edge", "The subdomain cannot start or end with a hyphen.", field="subdomain"
        )
    if slug[2:4] == "--":
        # RFC 5891 keeps "??--" for encoded international names (xn--...).
        raise TenantError(
            "subdomain_double_hyphen",
            "The subdomain cannot have two hyphens in the third and fourth place.",
            field="subdomain",
        )
    if slug in RESERVED_SUBDOMAINS:
        raise TenantError("subdomain_reserved", f"“{slug}” is reserved; choose another subdomain.", field="subdomain")
    return slug
