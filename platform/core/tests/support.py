"""Test helpers for the apps' API tests."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver


def views_of(urlconf: str, package: str) -> list[type]:
    """The view classes of `package` (a module prefix) that `urlconf` routes to, once per route."""
    found: list[type] = []

    def walk(patterns: list[URLPattern | URLResolver]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif (view := getattr(pattern.callback, "cls", None)) and view.__module__.startswith(package):
                found.append(view)

    walk(get_resolver(urlconf).url_patterns)
    return found
