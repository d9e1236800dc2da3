"""Django's caches pointed elsewhere."""

from __future__ import annotations

from django.conf import settings
from django.test import override_settings


def caches_at(url: str) -> override_settings:
    """Every Django cache pointed at another Redis (`override_settings`, usable as a context)."""
    return override_settings(CACHES={name: {**config, "LOCATION": url} for name, config in settings.CACHES.items()})
